"""What every C1 algorithm script shares: its default output folder, its error contract (exit 0, or one
line on stderr and an exit code; warnings about the input in one line too), and the original Docker
`CMD` modules' hand-over to the platform.

This is the bottom layer: algorithms import it, and it imports nothing above `errors`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from bl_reservoir.errors import ReservoirError, ReservoirWarning


def default_out_dir(input_path: str | os.PathLike) -> Path:
    """C1: the input path without its extension; for a remote input, its name without extension in the
    working folder (never the download cache, where a fetched copy may sit)."""
    text = os.fspath(input_path)
    if "://" in text and not text.startswith("file://"):
        name = text.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return Path(os.path.splitext(name)[0] or "results")
    return Path(os.path.splitext(text.removeprefix("file://"))[0])


@contextlib.contextmanager
def one_line_warnings(name: str) -> Iterator[None]:
    """While inside, a `ReservoirWarning` (the input was usable but not clean) prints as
    `<name>: warning: <file>: <what>` on stderr, like the errors; other warnings as Python shows them."""
    show = warnings.showwarning

    def show_ours(message, category, *args, **kwargs):
        if issubclass(category, ReservoirWarning):
            print(f"{name}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.showwarning = show_ours
        yield


def run_script(name: str, input_path: str, work: Callable[[], object]) -> int:
    """Run a script's work; bad input (a `ReservoirError`, an unreadable or unwritable path) becomes
    `<name>: error: <file>: <reason>` on stderr and a non-zero exit code, never a traceback."""
    try:
        with one_line_warnings(name):
            work()
    except ReservoirError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # e.g. an output folder that cannot be created: the user's to fix, not a bug
        print(f"{name}: error: {exc.filename or input_path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def docker_cmd(algorithm: str) -> NoReturn:
    """The original Docker `CMD`, `python -m bl_reservoir.<package>.<package> [INPUT ...]`: replace this
    process by `python -m bl_reservoir.cli.docker_cmd ALG ...` (one job, or a worker without INPUT).

    A hand-over, not an import: the algorithm packages stay below the platform's layers, and the
    process keeps its PID and signals (PID 1 in a pod)."""
    os.execv(sys.executable, [sys.executable, "-m", "bl_reservoir.cli.docker_cmd", algorithm, *sys.argv[1:]])
