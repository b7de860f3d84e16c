"""turboSETI 2.3.2 in its own virtual environment (it needs numpy < 2.4), built once and shared.

`ensure_turboseti()` returns the venv's python. The build takes a lock and is atomic (built in
a temporary folder, then renamed), so tests and benchmarks running at once share one venv.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = ["turbo-seti==2.3.2", "numpy<2.4"]


def venv_dir() -> Path:
    """`$BL_RESERVOIR_CACHE/turboseti-venv` (default `~/.cache/bl-reservoir/turboseti-venv`)."""
    from bl_reservoir.settings import cache_dir

    return cache_dir() / "turboseti-venv"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _works(venv: Path) -> bool:
    python = _python(venv)
    return python.exists() and subprocess.run(
        [str(python), "-c", "import turbo_seti.find_event.find_event"], capture_output=True, check=False).returncode == 0


def ensure_turboseti() -> Path:
    """Path of the python that has turbo-seti 2.3.2; builds the venv on first use (minutes)."""
    venv = venv_dir()
    if _works(venv):
        return _python(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / "turboseti-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _works(venv):
            return _python(venv)
        tmp = venv.with_name(f"turboseti-venv.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["python3", "-m", "venv", str(tmp)], check=True)
        # `-m pip` through the venv's python: script shebangs break once the folder is renamed
        subprocess.run([str(_python(tmp)), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
        shutil.rmtree(venv, ignore_errors=True)
        os.replace(tmp, venv)
    return _python(venv)


if __name__ == "__main__":
    print(ensure_turboseti())
    sys.exit(0)
