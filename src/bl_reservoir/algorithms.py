"""The algorithm registry (contract C1): one name, `package/name`, for every runnable search.

Three sources, looked up in this order (the first of two equal names wins, with a warning):

- built-ins shipped in this package, run as `python -m bl_reservoir.<package>.<name>` in the
  project's own environment;
- entry points in the group `bl_reservoir.algorithms`: `"pkg/name" = "module"` (run with
  `python -m module`) or `"module:function"` (called with the C1 argument list), also in the
  project's environment;
- external packages: folders with a `requirements.txt` and C1 scripts, found in the folders of
  `BL_RESERVOIR_ALGORITHMS`; each runs in its own virtual environment (`bl_reservoir.envs`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bl_reservoir import envs, settings
from bl_reservoir.errors import UnknownAlgorithm, UsageError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bl_reservoir.algorithms"
#: Built-in algorithms: name -> module run with `python -m`.
BUILTINS = {
    "energy_detection/preprocess_fine": "bl_reservoir.energy_detection.preprocess_fine",
    "dedoppler/search": "bl_reservoir.dedoppler.search",
}
_VERSION_FILE = "VERSION"


@dataclass(frozen=True)
class Algorithm:
    """One runnable algorithm; `command()` gives the argv of a C1 run."""

    name: str                      # "package/name"
    kind: str                      # "builtin" | "entry-point" | "external"
    version: str
    target: str                    # module (built-in, entry point) or script path (external)
    package_dir: Path | None = field(default=None, compare=False)  # external packages only

    @property
    def package(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def script_name(self) -> str:
        return self.name.split("/", 1)[1]

    def env_state(self) -> str:
        """`project` for algorithms in this environment, else `built`, `stale` or `not built`."""
        if self.package_dir is None:
            return "project"
        return envs.env_state(self.package_dir)

    def python(self, build: bool = True) -> str:
        """The interpreter that runs this algorithm; builds an external package's venv on first use."""
        if self.package_dir is None:
            return sys.executable
        env = envs.build_env(self.package_dir) if build else envs.env_path(self.package_dir)
        return str(envs.env_python(env))

    def command(self, input_path: str | os.PathLike, out_dir: str | os.PathLike,
                options: Sequence[str] = ()) -> list[str]:
        """argv of `python <script> <input_file> <out_dir> [options]` (building the env if needed)."""
        args = [os.fspath(input_path), os.fspath(out_dir), *map(str, options)]
        python = self.python()
        if self.kind == "external":
            return [python, self.target, *args]
        module, _, function = self.target.partition(":")
        if not function:
            return [python, "-m", module, *args]
        launcher = (f"import sys; from {module} import {function} as f; "
                    "r = f(sys.argv[1:]); sys.exit(r if isinstance(r, int) else 0)")
        return [python, "-c", launcher, *args]


def _project_version() -> str:
    from bl_reservoir import __version__

    return __version__


def _builtins() -> list[Algorithm]:
    # Looked up as files, not imported: importing an algorithm's package may load numba and friends.
    root = Path(__file__).resolve().parent
    found = []
    for name, module in BUILTINS.items():
        if (root.joinpath(*module.split(".")[1:]).with_suffix(".py")).is_file():
            found.append(Algorithm(name, "builtin", _project_version(), module))
    return found


def _entry_points() -> list[Algorithm]:
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.count("/") != 1:
            log.warning("entry point %r in %s: name must be package/name", ep.name, ENTRY_POINT_GROUP)
            continue
        version = ep.dist.version if ep.dist is not None else "0"
        found.append(Algorithm(ep.name, "entry-point", version, ep.value))
    return found


def content_version(package_dir: Path) -> str:
    """A package's version: its `VERSION` file, else a hash of its scripts and requirements.

    The hash makes an edited script a new version, so earlier results are not reused for it.
    """
    version_file = package_dir / _VERSION_FILE
    if version_file.is_file():
        return version_file.read_text().strip() or "0"
    digest = hashlib.sha256()
    for path in sorted([*package_dir.glob("*.py"), package_dir / envs.REQUIREMENTS]):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "0+" + digest.hexdigest()[:10]


def package_scripts(package_dir: Path) -> list[Path]:
    """C1 scripts of an external package: its top-level `*.py` files not starting with `_`."""
    return sorted(p for p in package_dir.glob("*.py") if not p.name.startswith(("_", ".")) and p.is_file())


def _is_package(path: Path) -> bool:
    return path.is_dir() and (path / envs.REQUIREMENTS).is_file()


def external_packages() -> list[Path]:
    """External package folders: each folder of `BL_RESERVOIR_ALGORITHMS` that is one, and its sub-folders that are."""
    found: list[Path] = []
    for root in settings.algorithm_dirs():
        if not root.is_dir():
            log.warning("BL_RESERVOIR_ALGORITHMS names %s, which is not a folder", root)
            continue
        candidates = [root] if _is_package(root) else sorted(p for p in root.iterdir() if _is_package(p))
        found.extend(p.resolve() for p in candidates)
    return found


def _externals() -> list[Algorithm]:
    found = []
    for package_dir in external_packages():
        version = content_version(package_dir)
        for script in package_scripts(package_dir):
            found.append(Algorithm(f"{package_dir.name}/{script.stem}", "external", version, str(script),
                                   package_dir))
    return found


def list_algorithms() -> list[Algorithm]:
    """Every algorithm known now: built-ins, entry points, then external packages."""
    seen: dict[str, Algorithm] = {}
    for algorithm in [*_builtins(), *_entry_points(), *_externals()]:
        if algorithm.name in seen:
            log.warning("algorithm %s (%s) is shadowed by the %s one", algorithm.name, algorithm.kind,
                        seen[algorithm.name].kind)
            continue
        seen[algorithm.name] = algorithm
    return list(seen.values())


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called `package/name`; `UnknownAlgorithm` lists the known names otherwise."""
    algorithms = list_algorithms()
    for algorithm in algorithms:
        if algorithm.name == name:
            return algorithm
    raise UnknownAlgorithm(name, [a.name for a in algorithms])


def find_package(name_or_path: str) -> Path:
    """An external package folder, by package name (searched like the registry) or by path."""
    path = Path(name_or_path).expanduser()
    if _is_package(path):
        return path.resolve()
    for package_dir in external_packages():
        if package_dir.name == name_or_path:
            return package_dir
    known = [p.name for p in external_packages()]
    raise UsageError(f"no external algorithm package {name_or_path!r} in BL_RESERVOIR_ALGORITHMS "
                     f"(known: {', '.join(known) or 'none'}); give a package name or a folder "
                     "with a requirements.txt")
