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


class UnknownAlgorithm(UsageError):
    """An algorithm name the registry does not know: lists the names it does know."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown algorithm {name!r} (known: {', '.join(self.known) or 'none'})")


class EnvBuildError(ReservoirError):
    """An external algorithm package whose virtual environment could not be built."""

    exit_code = 5

    def __init__(self, package: str, reason: str):
        self.package = package
        self.reason = reason
        super().__init__(f"{package}: environment build failed: {reason}")


class FetchError(ReservoirError):
    """An input that cannot be fetched: names the URI and the reason (missing, 404, scheme, size)."""

    exit_code = 6

    def __init__(self, uri: str, reason: str):
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class UploadError(ReservoirError):
    """A bucket that cannot be read or written: names the bucket URI and the reason."""

    exit_code = 7

    def __init__(self, uri: str, reason: str):
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class JobFailed(ReservoirError):
    """One job (one algorithm on one input) that failed; `reason` is one line naming what and why."""

    exit_code = 8

    def __init__(self, reason: str, job_id: str | None = None):
        self.reason = reason
        self.job_id = job_id
        super().__init__(reason)


class JobCancelled(JobFailed):
    """A job stopped midway because its campaign was cancelled: its process killed, nothing uploaded."""
