"""Fixtures of the dedoppler tests: the turboSETI reference venv (built once, slow)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

_HELPER = Path(__file__).resolve().parents[2] / "benchmarks" / "_turboseti.py"


@pytest.fixture(scope="session")
def turboseti_python() -> Path:
    """The python of a venv with turbo-seti 2.3.2 and numpy < 2.4 (built on first use)."""
    spec = importlib.util.spec_from_file_location("_turboseti", _HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.ensure_turboseti()
    except (OSError, subprocess.CalledProcessError) as exc:  # no network / no python3-venv here
        pytest.skip(f"cannot build the turboSETI venv: {exc}")
