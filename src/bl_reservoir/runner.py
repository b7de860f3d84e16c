"""One job end to end: one algorithm on one input, from any location to a complete result in a bucket.

received -> (skipped) -> fetched -> running -> uploaded -> done, or failed at any step. Each step is
an event, a JSON-able dict given to `on_event`. A job leaves nothing behind: its scratch folder
(the fetched copy, the algorithm's output) is removed on success and on failure, and a scratch
folder left by a killed process is removed by the next job that starts. A failed job has put
nothing in the bucket.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bl_reservoir import settings, storage
from bl_reservoir.errors import InvalidResults, JobCancelled, JobFailed, ReservoirError
from bl_reservoir.io import fetch

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 6 * 3600.0
#: How often a running algorithm's job asks `should_stop` (a cancelled campaign): seconds.
STOP_POLL_S = 1.0
LOG_FILE = "log.txt"
LOG_TAIL_LINES = 5
_LOCK = ".lock"
_LOCKLESS_GRACE_S = 60.0

EventCallback = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]


@dataclass
class JobOutcome:
    """What a finished job did: `succeeded` or `skipped` (a complete result was already there)."""

    state: str
    result_uri: str
    n_hits: int
    wall_seconds: float
    manifest: dict[str, Any]


def scratch_root() -> Path:
    """Where jobs keep their scratch folders (`<cache>/scratch`)."""
    return settings.cache_dir() / "scratch"


def options_to_parameters(options: Sequence[str]) -> dict[str, Any]:
    """`["--threshold", "2048", "--fast"]` -> `{"threshold": "2048", "fast": True}` for the manifest."""
    params: dict[str, Any] = {}
    loose: list[str] = []
    items = list(options)
    i = 0
    while i < len(items):
        item = str(items[i])
        if item.startswith("--") and len(item) > 2:
            key, eq, value = item[2:].partition("=")
            if eq:
                params[key.replace("-", "_")] = value
            elif i + 1 < len(items) and not str(items[i + 1]).startswith("--"):
                params[key.replace("-", "_")] = str(items[i + 1])
                i += 1
            else:
                params[key.replace("-", "_")] = True
        else:
            loose.append(item)
        i += 1
    if loose:
        params["args"] = loose
    return params


class _Job:
    """The state of one run: identity, events, scratch folder."""

    def __init__(self, algorithm: str, input_uri: str, job_id: str | None, on_event: EventCallback | None):
        self.algorithm, self.input_uri = algorithm, input_uri
        self.id = job_id or uuid.uuid4().hex[:12]
        self.on_event = on_event
        self.scratch: Path | None = None
        self._lock_handle = None

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        from bl_reservoir.results import to_jsonable, utcnow

        body = to_jsonable({"event": event, "time": utcnow(), "job": self.id, "algorithm": self.algorithm,
                            "input": self.input_uri, **fields})
        log.info("job %s: %s %s", self.id, event, {k: v for k, v in body.items() if k not in ("time", "job")})
        if self.on_event is not None:
            try:
                self.on_event(body)
            except Exception:  # a broken listener must not break the job
                log.exception("event callback failed on %s", event)
        return body

    def make_scratch(self) -> Path:
        root = scratch_root()
        root.mkdir(parents=True, exist_ok=True)
        _sweep_stale(root)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"job-{self.id}-", dir=root))
        # Held for the job's life; a folder whose lock nobody holds belongs to a dead process.
        self._lock_handle = open(self.scratch / _LOCK, "w")  # noqa: SIM115 - closed in clean()
        fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self.scratch

    def clean(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        if self._lock_handle is not None:
            self._lock_handle.close()


def _sweep_stale(root: Path) -> None:
    """Remove scratch folders of jobs whose process died (their lock is free)."""
    for folder in root.glob("job-*"):
        lock = folder / _LOCK
        try:
            if time.time() - folder.stat().st_mtime < _LOCKLESS_GRACE_S:
                # a job that is just starting: between making its folder, creating its lock file and
                # taking the lock, a sweep from another job (thread or process) must not step in
                continue
        except OSError:
            continue
        try:
            with open(lock, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live job
        except OSError:
            pass
        log.info("removing stale scratch folder %s", folder)
        shutil.rmtree(folder, ignore_errors=True)


def _log_tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


#: A job is one core: BL@Scale scales by running jobs side by side (one per core), so the numeric
#: libraries of an algorithm must not each start a thread per core. The caller's settings win.
ONE_CORE = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def job_environment(external: bool) -> dict[str, str]:
    """Environment of an algorithm's process: ours, one core unless set otherwise, unbuffered output;
    an external package's venv gets no PYTHONPATH/PYTHONHOME/VIRTUAL_ENV of ours."""
    env = {**ONE_CORE, **os.environ, "PYTHONUNBUFFERED": "1"}
    if external:
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
    return env


def _run_algorithm(cmd: list[str], log_path: Path, timeout: float, label: str,
                   package_dir: Path | None = None, should_stop: StopCheck | None = None) -> float:
    """Run the C1 command with output to `log_path`; seconds taken. Kills the whole process group on
    timeout, or when `should_stop()` turns true (checked every STOP_POLL_S).

    An external package (`package_dir`) runs from its own folder, as the original image ran
    `cd <package> && python3 <script>`, and no PYTHONPATH/PYTHONHOME/VIRTUAL_ENV leaks into its venv.
    """
    start = time.monotonic()
    env = job_environment(package_dir is not None)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=package_dir or log_path.parent)
        try:
            code = _wait(proc, start + timeout, should_stop)
        except BaseException as exc:
            _kill_group(proc)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise JobFailed(f"{label}: timed out after {timeout:g} s (killed)") from None
            if isinstance(exc, JobCancelled):
                raise JobCancelled(f"{label}: cancelled while running (killed)") from None
            raise
    if code != 0:
        tail = _log_tail(log_path)
        raise JobFailed(f"{label}: exited with code {code}" + (f"; last log lines: {tail}" if tail else ""))
    return time.monotonic() - start


def _wait(proc: subprocess.Popen, deadline: float, should_stop: StopCheck | None) -> int:
    """The process's exit code; TimeoutExpired past `deadline`, JobCancelled once `should_stop()`."""
    while True:
        left = deadline - time.monotonic()
        try:
            return proc.wait(timeout=max(0.0, min(left, STOP_POLL_S)) if should_stop else max(0.0, left))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
        if should_stop():
            raise JobCancelled("cancelled")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def _same_result(manifest: dict[str, Any], size: int, version: str, options: Sequence[str]) -> bool:
    """Does a complete result in the bucket come from this input size, algorithm version and options?"""
    return (manifest.get("input", {}).get("size_bytes") == size
            and str(manifest.get("algorithm", {}).get("version")) == str(version)
            and list(manifest.get("options", [])) == [str(o) for o in options])


def run_job(algorithm: str, input_uri: str, *, bucket: str | None = None, options: Sequence[str] = (),
            force: bool = False, timeout: float = DEFAULT_TIMEOUT_S, on_event: EventCallback | None = None,
            job_id: str | None = None, should_stop: StopCheck | None = None) -> JobOutcome:
    """Run `algorithm` on `input_uri` and upload the result to `bucket` (C3 layout).

    Returns a `JobOutcome`; raises `JobFailed` (after a `failed` event) with a one-line reason, or
    `JobCancelled` when `should_stop()` turned true before the upload (the algorithm is killed).
    """
    job = _Job(algorithm, str(input_uri), job_id, on_event)
    options = [str(o) for o in options]
    bucket_uri = settings.bucket(bucket)
    job.emit("received", bucket=bucket_uri, options=options)
    try:
        return _execute(job, bucket_uri, options, force, timeout, should_stop)
    except ReservoirError as exc:
        reason = exc.reason if isinstance(exc, JobFailed) else str(exc)
        job.emit("failed", reason=reason, error=type(exc).__name__)
        raise (JobCancelled if isinstance(exc, JobCancelled) else JobFailed)(reason, job.id) from None
    except BaseException as exc:
        job.emit("failed", reason=f"internal error: {type(exc).__name__}: {exc}", error=type(exc).__name__)
        raise
    finally:
        job.clean()


def _execute(job: _Job, bucket_uri: str, options: list[str], force: bool, timeout: float,
             should_stop: StopCheck | None) -> JobOutcome:
    from bl_reservoir.algorithms import get_algorithm
    from bl_reservoir.io import open_observation
    from bl_reservoir.results import (
        build_manifest,
        complete_results,
        read_results,
        utcnow,
    )

    started = time.monotonic()
    alg = get_algorithm(job.algorithm)
    size = fetch.input_size(job.input_uri)
    dest = storage.result_uri(bucket_uri, fetch.obs_name(job.input_uri), alg.package, alg.script_name)
    existing = storage.is_complete(dest)
    if existing is not None and not force and _same_result(existing, size, alg.version, options):
        job.emit("skipped", result=dest, reason="a complete result for this input and version is in the bucket")
        return JobOutcome("skipped", dest, int(existing.get("n_hits", 0)), time.monotonic() - started, existing)

    scratch = job.make_scratch()
    local = fetch.fetch_input(job.input_uri, cache_dir=scratch / "input")
    with open_observation(local):  # a corrupt file fails here, with the file named, whatever the algorithm
        pass
    job.emit("fetched", path=str(local), size_bytes=size)

    out = scratch / "out"
    out.mkdir()
    cmd = alg.command(local, out, options)
    started_at = utcnow()
    job.emit("running", command=cmd, version=alg.version, kind=alg.kind)
    label = f"{alg.name} on {job.input_uri}"
    log_path = scratch / LOG_FILE
    try:
        _run_algorithm(cmd, log_path, timeout, label, package_dir=alg.package_dir, should_stop=should_stop)
    finally:
        if log_path.exists():
            shutil.copyfile(log_path, out / LOG_FILE)

    own = _own_manifest(out)
    manifest = build_manifest(
        algorithm={"package": alg.package, "name": alg.script_name, "version": alg.version},
        parameters=own.get("parameters") or options_to_parameters(options),
        input_uri=job.input_uri, input_size=size, started_at=started_at, finished_at=utcnow(),
        wall_seconds=round(time.monotonic() - started, 3), options=options, kind=alg.kind, job=job.id)
    try:
        complete_results(out, manifest)
        read_results(out, stamps=False)  # exactly what a bucket reader will check
    except InvalidResults as exc:  # its path is our scratch folder: the reason is what matters
        raise JobFailed(f"{label}: malformed results: {exc.reason}") from None
    if should_stop is not None and should_stop():
        raise JobCancelled(f"{label}: cancelled before its upload")
    storage.upload_dir(bucket_uri, out, dest=dest)
    completed = storage.is_complete(dest) or {}
    job.emit("uploaded", result=dest, n_hits=completed.get("n_hits"))
    wall = time.monotonic() - started
    outcome = JobOutcome("succeeded", dest, int(completed.get("n_hits", 0)), wall, completed)
    job.emit("done", result=dest, n_hits=outcome.n_hits, wall_seconds=round(wall, 3))
    return outcome


def _own_manifest(out: Path) -> dict[str, Any]:
    """A manifest the algorithm wrote itself (built-ins do), for its full parameter set."""
    import json

    from bl_reservoir.results import MANIFEST

    try:
        body = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
