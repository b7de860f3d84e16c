"""One job end to end: one algorithm on one input, from any location to a complete result in a bucket.

received -> (skipped) -> fetched -> running -> uploaded -> done, or failed at any step. Each step is
an event, a JSON-able dict given to `on_event`. A job leaves nothing behind: its scratch folder
(the fetched copy, the algorithm's output) is removed on success and on failure, and a scratch
folder left by a killed process is removed by the next job that starts. A failed job has put
nothing in the bucket, and an older result there stays as it was.

The algorithm's output is not trusted: it may not hold links or special files, nor more than
`max_result_bytes` (the algorithm is killed when it gets there), and its pickles are read only by
its own interpreter (`results.unpickle_command`), never by this process. Every process a job
starts dies with it, even by SIGKILL (`_die_with_parent`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bl_reservoir import results, settings, storage
from bl_reservoir.errors import InvalidResults, JobCancelled, JobFailed, ReservoirError
from bl_reservoir.io import fetch

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 6 * 3600.0
#: The most an algorithm's output folder may hold (`--max-result-size`): 2 GiB.
DEFAULT_MAX_RESULT_BYTES = 2 * 1024**3
#: Seconds the algorithm's interpreter gets to read its own pickles.
UNPICKLE_TIMEOUT_S = results.UNPICKLE_TIMEOUT_S
#: How often a running algorithm's job asks `should_stop` (a cancelled campaign): seconds.
STOP_POLL_S = 1.0
LOG_FILE = "log.txt"
#: Scratch folders are `job-<job id>-<random>`: what ties a running process to its job (the Workers page).
SCRATCH_PREFIX = "job-"
#: The most of a failed job's log (its end) that its `failed` event keeps, for the job store: a failed
#: job puts nothing in the bucket, and its scratch folder goes.
FAILED_LOG_BYTES = 256 * 1024
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


def scratch_prefix(job_id: str) -> str:
    """The start of job `job_id`'s scratch folder name."""
    return f"{SCRATCH_PREFIX}{job_id}-"


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
        log.info("job %s: %s %s", self.id, event,
                 {k: v for k, v in body.items() if k not in ("time", "job", "log")})
        if self.on_event is not None:
            try:
                self.on_event(body)
            except Exception:  # a broken listener must not break the job
                log.exception("event callback failed on %s", event)
        return body

    def log_text(self) -> str | None:
        """The algorithm's log so far (its last FAILED_LOG_BYTES), or None when it never ran."""
        path = self.scratch / LOG_FILE if self.scratch is not None else None
        if path is None or not path.is_file():
            return None
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - FAILED_LOG_BYTES))
            return f.read().decode("utf-8", errors="replace")

    def make_scratch(self) -> Path:
        root = scratch_root()
        root.mkdir(parents=True, exist_ok=True)
        _sweep_stale(root)
        self.scratch = Path(tempfile.mkdtemp(prefix=scratch_prefix(self.id), dir=root))
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
    for folder in root.glob(f"{SCRATCH_PREFIX}*"):
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


#: Run before the real command, in the child: PR_SET_PDEATHSIG (1) with SIGKILL (9), so the kernel kills
#: the process when the thread that started it dies, even by SIGKILL; then the command replaces it
#: (the signal setting survives exec). argv: our PID, then the command.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(137)\n"  # the parent died before the prctl: as if it had come in time
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def _die_with_parent(cmd: list[str]) -> list[str]:
    """`cmd` started so that it dies with this process (Linux; elsewhere `cmd` as it is).

    A launcher rather than `preexec_fn`: that one runs Python between fork and exec, which can
    deadlock in a process with threads (a Dask worker runs jobs in threads).
    """
    if not sys.platform.startswith("linux"):
        return list(cmd)
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]


def _start(cmd: list[str], log_path: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start `cmd` with its output to `log_path`, in its own session, dying with this process."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(_die_with_parent(cmd), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=cwd)


def _run(cmd: list[str], log_path: Path, timeout: float, label: str, env: dict[str, str], cwd: Path,
         should_stop: StopCheck | None = None, watch: Callable[[], None] | None = None) -> int:
    """Run `cmd` to its end; its exit code. Kills the whole process group on timeout, when
    `should_stop()` turns true, or when `watch()` raises (both checked every STOP_POLL_S)."""
    proc = _start(cmd, log_path, env, cwd)
    try:
        return _wait(proc, time.monotonic() + timeout, should_stop, watch)
    except BaseException as exc:
        _kill_group(proc)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise JobFailed(f"{label}: timed out after {timeout:g} s (killed)") from None
        if isinstance(exc, JobCancelled):
            raise JobCancelled(f"{label}: cancelled while running (killed)") from None
        raise


def _run_algorithm(cmd: list[str], log_path: Path, timeout: float, label: str,
                   package_dir: Path | None = None, should_stop: StopCheck | None = None,
                   out: Path | None = None, max_result_bytes: int | None = None) -> float:
    """Run the C1 command with output to `log_path`; seconds taken. Kills the whole process group on
    timeout, when `should_stop()` turns true, or when `out` grows past `max_result_bytes`.

    An external package (`package_dir`) runs from its own folder, as the original image ran
    `cd <package> && python3 <script>`, and no PYTHONPATH/PYTHONHOME/VIRTUAL_ENV leaks into its venv.
    """
    start = time.monotonic()
    watch = None
    if out is not None and max_result_bytes is not None:
        def watch() -> None:
            _check_output(out, label, max_result_bytes, running=True)

    code = _run(cmd, log_path, timeout, label, job_environment(package_dir is not None),
                package_dir or log_path.parent, should_stop, watch)
    if code != 0:
        tail = _log_tail(log_path)
        raise JobFailed(f"{label}: exited with code {code}" + (f"; last log lines: {tail}" if tail else ""))
    return time.monotonic() - start


def _wait(proc: subprocess.Popen, deadline: float, should_stop: StopCheck | None,
          watch: Callable[[], None] | None = None) -> int:
    """The process's exit code; TimeoutExpired past `deadline`, JobCancelled once `should_stop()`,
    whatever `watch()` raises."""
    while True:
        left = deadline - time.monotonic()
        try:
            return proc.wait(timeout=max(0.0, min(left, STOP_POLL_S)))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
        if should_stop is not None and should_stop():
            raise JobCancelled("cancelled")
        if watch is not None:
            watch()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def _check_output(out: Path, label: str, max_result_bytes: int, running: bool = False) -> None:
    """Refuse an output folder holding a link or a special file, or more than `max_result_bytes`."""
    try:
        total = sum(results.result_files(out).values())
    except InvalidResults as exc:
        raise JobFailed(f"{label}: {exc.reason}" + (" (killed)" if running else "")) from None
    except OSError:
        if running:
            return  # a file the algorithm removed while we counted: look again at the next poll
        raise
    if total > max_result_bytes:
        raise JobFailed(f"{label}: the result {'reached' if running else 'holds'} {total:,} bytes, over the limit of "
                        f"{max_result_bytes:,} bytes (--max-result-size)" + (" (killed)" if running else ""))


def _unpickle(alg: Any, out: Path, scratch: Path, label: str, max_result_bytes: int) -> Path | None:
    """Where the algorithm's own interpreter put JSON/.npy copies of its pickles (None when it wrote
    `header.json` and `info_df.parquet` itself); its code runs there, never in this process."""
    if results.has_safe_copies(out) or not (out / results.HEADER_PKL).is_file() \
            or not (out / results.INFO_PKL).is_file():
        return None  # complete_results says what is missing
    to = scratch / "unpickled"
    to.mkdir()
    log_path = scratch / "unpickle.log"
    code = _run(results.unpickle_command(out, to, alg.python()), log_path, UNPICKLE_TIMEOUT_S,
                f"{label}: reading its pickles", job_environment(alg.package_dir is not None),
                alg.package_dir or scratch)
    if code != 0:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        raise JobFailed(f"{label}: malformed results: {results.unpickle_failure(code, text)}")
    _check_output(to, f"{label}: its pickles", max_result_bytes)
    return to


def _same_result(manifest: dict[str, Any], size: int, version: str, options: Sequence[str]) -> bool:
    """Does a complete result in the bucket come from this input size, algorithm version and options?"""
    return (manifest.get("input", {}).get("size_bytes") == size
            and str(manifest.get("algorithm", {}).get("version")) == str(version)
            and list(manifest.get("options", [])) == [str(o) for o in options])


def run_job(algorithm: str, input_uri: str, *, bucket: str | None = None, options: Sequence[str] = (),
            force: bool = False, timeout: float = DEFAULT_TIMEOUT_S, on_event: EventCallback | None = None,
            job_id: str | None = None, should_stop: StopCheck | None = None,
            max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> JobOutcome:
    """Run `algorithm` on `input_uri` and upload the result to `bucket` (C3 layout).

    Returns a `JobOutcome`; raises `JobFailed` (after a `failed` event) with a one-line reason, or
    `JobCancelled` when `should_stop()` turned true before the upload (the algorithm is killed).
    `force` runs even when a complete result is there, and replaces one of another input file
    with the same observation name (`x.fil` after `x.h5`), which otherwise fails the job.
    """
    job = _Job(algorithm, str(input_uri), job_id, on_event)
    options = [str(o) for o in options]
    bucket_uri = settings.bucket(bucket)
    job.emit("received", bucket=bucket_uri, options=options)
    try:
        return _execute(job, bucket_uri, options, force, timeout, should_stop, max_result_bytes)
    except ReservoirError as exc:
        reason = exc.reason if isinstance(exc, JobFailed) else str(exc)
        job.emit("failed", reason=reason, error=type(exc).__name__, log=job.log_text())
        raise (JobCancelled if isinstance(exc, JobCancelled) else JobFailed)(reason, job.id) from None
    except BaseException as exc:
        job.emit("failed", reason=f"internal error: {type(exc).__name__}: {exc}", error=type(exc).__name__,
                 log=job.log_text())
        raise
    finally:
        job.clean()


def _execute(job: _Job, bucket_uri: str, options: list[str], force: bool, timeout: float,
             should_stop: StopCheck | None, max_result_bytes: int) -> JobOutcome:
    from bl_reservoir.algorithms import get_algorithm
    from bl_reservoir.io import open_observation
    from bl_reservoir.results import build_manifest, complete_results, read_results, utcnow

    started = time.monotonic()
    alg = get_algorithm(job.algorithm)
    size = fetch.input_size(job.input_uri)
    name = fetch.obs_name(job.input_uri)
    if not fetch.safe_name(name) or name in storage.RESERVED:
        raise JobFailed(f"{job.input_uri}: its observation name {name[:60]!r} cannot name a result folder: use "
                        f"letters, digits and _ . + - (at most 200, not starting with . or -), not "
                        f"{' or '.join(storage.RESERVED)}; rename the file")
    dest = storage.result_uri(bucket_uri, name, alg.package, alg.script_name)
    storage.check_bucket(bucket_uri)
    existing = storage.is_complete(dest)
    if existing is not None and not force:
        storage.check_same_input(dest, existing, job.input_uri)
        if _same_result(existing, size, alg.version, options):
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
    _run_algorithm(cmd, log_path, timeout, label, package_dir=alg.package_dir, should_stop=should_stop,
                   out=out, max_result_bytes=max_result_bytes)
    _check_output(out, label, max_result_bytes)
    unpickled = _unpickle(alg, out, scratch, label, max_result_bytes)

    own = _own_manifest(out)
    manifest = build_manifest(
        algorithm={"package": alg.package, "name": alg.script_name, "version": alg.version},
        parameters=own.get("parameters") or options_to_parameters(options),
        input_uri=job.input_uri, input_size=size, started_at=started_at, finished_at=utcnow(),
        wall_seconds=round(time.monotonic() - started, 3), options=options, kind=alg.kind, job=job.id)
    try:
        complete_results(out, manifest, unpickled=unpickled)
        read_results(out, stamps=False)  # exactly what a bucket reader will check
    except InvalidResults as exc:  # its path is our scratch folder: the reason is what matters
        raise JobFailed(f"{label}: malformed results: {exc.reason}") from None
    if (out / LOG_FILE).is_dir():
        raise JobFailed(f"{label}: malformed results: {LOG_FILE} is a folder (the runner writes the log there)")
    (out / LOG_FILE).unlink(missing_ok=True)  # a file the algorithm left there is replaced, never written into
    shutil.copyfile(log_path, out / LOG_FILE)
    _check_output(out, label, max_result_bytes)
    if should_stop is not None and should_stop():
        raise JobCancelled(f"{label}: cancelled before its upload")
    storage.upload_dir(bucket_uri, out, dest=dest, replace=force)
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
