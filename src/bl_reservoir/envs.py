"""Virtual environments of external algorithm packages, one per package and requirements hash.

Each external package runs in its own venv built from its `requirements.txt` (as the original
image kept `<package>/<package>_env`). The venv lives at `<cache>/envs/<package>-<hash>`, where
the hash covers the requirements and the Python version, so a changed `requirements.txt` gets a
new environment. Several workers on one machine may ask for the same environment at once: the
build holds an `fcntl` lock and happens in a temporary folder that is renamed into place, so a
venv at the final path is always complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from bl_reservoir import settings
from bl_reservoir.errors import EnvBuildError

log = logging.getLogger(__name__)

REQUIREMENTS = "requirements.txt"
#: Written last into a built venv; a folder without it is never used.
_MARKER = ".bl-reservoir-env"
_LOG_TAIL_LINES = 8


def envs_root() -> Path:
    """Folder holding every built environment (`<cache>/envs`)."""
    return settings.cache_dir() / "envs"


def requirements_hash(package_dir: str | os.PathLike) -> str:
    """12 hex digits of the requirements file plus the Python version that will run it."""
    req = Path(package_dir) / REQUIREMENTS
    digest = hashlib.sha256(req.read_bytes() if req.is_file() else b"")
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:12]


def env_path(package_dir: str | os.PathLike) -> Path:
    """Where the venv for this package and its current requirements lives (built or not)."""
    package_dir = Path(package_dir)
    return envs_root() / f"{package_dir.name}-{requirements_hash(package_dir)}"


def env_python(env: Path) -> Path:
    return env / "bin" / "python"


def env_state(package_dir: str | os.PathLike) -> str:
    """`built`, `stale` (built for older requirements) or `not built`."""
    package_dir = Path(package_dir)
    if (env_path(package_dir) / _MARKER).is_file():
        return "built"
    if any((p / _MARKER).is_file() for p in _built_versions(package_dir.name)):
        return "stale"
    return "not built"


def _built_versions(package: str) -> list[Path]:
    root = envs_root()
    if not root.is_dir():
        return []
    return [p for p in root.glob(f"{package}-*") if p.is_dir() and len(p.name) == len(package) + 13]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes, or the process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_env(package_dir: str | os.PathLike, force: bool = False) -> Path:
    """Build (or reuse) the venv of the external package in `package_dir` from its `requirements.txt`;
    returns the venv folder (`algorithms.find_package` finds a package's folder by name).

    Safe to call from several processes at once: the first builds, the others wait and reuse it.
    """
    package_dir = Path(package_dir).resolve()
    if not (package_dir / REQUIREMENTS).is_file():
        raise EnvBuildError(package_dir.name, f"{package_dir} has no {REQUIREMENTS}")
    package = package_dir.name
    target = env_path(package_dir)
    if not force and (target / _MARKER).is_file():
        return target
    with _locked(envs_root() / f".{package}.lock"):
        if not force and (target / _MARKER).is_file():  # another process built it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=envs_root()))
        try:
            _create(package, package_dir, tmp)
            (tmp / _MARKER).write_text(requirements_hash(package_dir) + "\n")
            if target.exists():
                _remove(target)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                _remove(tmp)
        for old in _built_versions(package):
            if old != target:  # requirements changed: the old environment is garbage now
                log.info("removing stale environment %s", old)
                _remove(old)
    log.info("built environment %s", target)
    return target


def _create(package: str, package_dir: Path, env: Path) -> None:
    """`python -m venv --without-pip`, then this project's pip installs the requirements into it.

    Skipping ensurepip saves most of the build time; the venv gets only what the package asks for.
    """
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", "--clear", "--without-pip", str(env)]]
    if _has_requirements(package_dir / REQUIREMENTS):
        steps.append([sys.executable, "-m", "pip", "--python", str(env_python(env)), "install",
                      "--disable-pip-version-check", "-q", "-r", str(package_dir / REQUIREMENTS)])
    for cmd in steps:
        log.info("%s: %s", package, " ".join(cmd))
        proc = subprocess.run(cmd, cwd=package_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False)
        if proc.returncode != 0:
            lines = [line for line in proc.stdout.strip().splitlines() if not line.startswith("WARNING: Location")]
            tail = " | ".join(lines[-_LOG_TAIL_LINES:])
            raise EnvBuildError(package, f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} exited with "
                                         f"{proc.returncode}: {tail or 'no output'}")


def _has_requirements(path: Path) -> bool:
    return any(line.split("#", 1)[0].strip() for line in path.read_text().splitlines())


def _remove(path: Path) -> None:
    # Rename first so that a half-deleted folder never sits at a name someone may use.
    trash = path.with_name(f".{path.name}.trash-{os.getpid()}")
    try:
        os.rename(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)
