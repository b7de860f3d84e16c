"""The error contract every C1 algorithm script shares: exit 0, or one line on stderr and an exit code; warnings about the input in one line too."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator

from bl_reservoir.errors import ReservoirError, ReservoirWarning


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
