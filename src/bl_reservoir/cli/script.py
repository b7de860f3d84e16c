"""The error contract every C1 algorithm script shares: exit 0, or one line on stderr and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bl_reservoir.errors import ReservoirError


def run_script(name: str, input_path: str, work: Callable[[], object]) -> int:
    """Run a script's work; bad input (a `ReservoirError`, an unreadable or unwritable path) becomes
    `<name>: error: <file>: <reason>` on stderr and a non-zero exit code, never a traceback."""
    try:
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
