"""One exception hierarchy: every error a user can cause is a `ReservoirError`.

The CLI prints `str(error)` as one line and exits with `error.exit_code`; a traceback means a bug.
"""

from __future__ import annotations

import os


class ReservoirError(Exception):
    """Base of every error caused by input, configuration or the environment (not by a bug)."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ReservoirWarning(UserWarning):
    """Something works but probably not as the user meant (e.g. a guessed coarse-channel width)."""


class InvalidObservation(ReservoirError):
    """An observation file that cannot be read: names the file and what is wrong with it."""

    exit_code = 3

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class InvalidResults(ReservoirError):
    """A results folder that breaks contract C2 (missing files, stamps that do not match hits)."""

    exit_code = 4

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UsageError(ReservoirError):
    """Wrong arguments or settings given by the user."""

    exit_code = 2


class NotBuiltYet(UsageError):
    """A command of contract C4 that this version does not provide yet."""

    def __init__(self, command: str):
        super().__init__(f"bl-reservoir {command}: not built yet")
