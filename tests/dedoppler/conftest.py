"""Fixtures of the dedoppler tests: the turboSETI reference venv (built once, slow)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _servers import benchmark_module


@pytest.fixture(scope="session")
def turboseti_python() -> Path:
    """The python of a venv with turbo-seti 2.3.2 and numpy < 2.4 (built on first use)."""
    try:
        return benchmark_module("_turboseti").ensure_turboseti()
    except (OSError, subprocess.CalledProcessError) as exc:  # no network / no python3-venv here
        pytest.skip(f"cannot build the turboSETI venv: {exc}")
