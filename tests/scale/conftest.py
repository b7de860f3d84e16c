"""Job stores for the scale tests: SQLite always, PostgreSQL when `BL_RESERVOIR_TEST_POSTGRES` names one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _servers import require

POSTGRES = os.environ.get("BL_RESERVOIR_TEST_POSTGRES", "").strip()


def _empty_postgres(url: str) -> str:
    import sqlalchemy as sa

    from bl_reservoir.scale import schema

    engine = sa.create_engine(url)
    try:
        schema.metadata.drop_all(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def store_url(request, tmp_path) -> str:
    """A SQLAlchemy URL of an empty job store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    require(bool(POSTGRES), "BL_RESERVOIR_TEST_POSTGRES is not set (.ci/run starts PostgreSQL)")
    return _empty_postgres(POSTGRES)


@pytest.fixture
def store(store_url):
    """The job store of `store_url`."""
    from bl_reservoir.scale.jobs import JobStore

    handle = JobStore(store_url)
    yield handle
    handle.close()


@pytest.fixture
def index(store_url):
    """The hits index of `store_url` (the same database as `store`)."""
    from bl_reservoir.scale.index import HitIndex

    handle = HitIndex(store_url)
    yield handle
    handle.close()


# -- campaigns on real Dask clusters ---------------------------------------------------------

PLUGINS = Path(__file__).parent / "plugins"   # the `sleepy/peak` test algorithm, by entry point
SLOW_ALG = "sleepy/peak"


@pytest.fixture
def scale_env(tmp_path, monkeypatch):
    """Environment of a campaign test: test algorithm importable, run log, bucket and store in tmp_path."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("BLR_SLEEPY_LOG", str(tmp_path / "runs.log"))
    monkeypatch.setenv("BL_RESERVOIR_BUCKET", str(tmp_path / "bucket"))
    monkeypatch.setenv("BL_RESERVOIR_DB", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("BL_RESERVOIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    return tmp_path


def runs_per_input(tmp_path: Path) -> dict[str, int]:
    """How many times the test algorithm really ran on each input file name."""
    from collections import Counter

    log = tmp_path / "runs.log"
    return dict(Counter(line.split()[0] for line in log.read_text().splitlines())) if log.exists() else {}


def cli(*args: str, timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bl_reservoir.cli", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def _wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Cluster:
    """`dask scheduler` and `bl-reservoir worker` processes on 127.0.0.1, ephemeral ports."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[str, subprocess.Popen] = {}   # worker address -> process
        scheduler_file = tmp_path / "scheduler.json"
        dask_cli = Path(sys.executable).with_name("dask")
        # allowed-failures 0: the scheduler gives a lost task up at once, so the engine's own retry
        # (up to --max-attempts, counted in the store) is what the tests exercise
        self._spawn([str(dask_cli), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(scheduler_file)], "scheduler",
                    env={**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
        _wait_for(scheduler_file.exists, 60, "the scheduler file")
        self.address = json.loads(_wait_for(scheduler_file.read_text, 10, "the scheduler address"))["address"]

    def _spawn(self, argv: list[str], name: str, env: dict | None = None) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "w") as log:  # the child keeps its own copy of the file
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.procs.append(proc)
        return proc

    def add_worker(self, name: str, nthreads: int = 1, argv: list[str] | None = None) -> str:
        """Start a worker (`bl-reservoir worker`, or `argv` with DASK_SCHEDULER_ADDRESS set); its address."""
        argv = argv or [sys.executable, "-m", "bl_reservoir.cli", "-v", "worker", "--scheduler", self.address,
                        "--nthreads", str(nthreads), "--name", name]
        proc = self._spawn(argv, name, env={**os.environ, "DASK_SCHEDULER_ADDRESS": self.address})
        pattern = re.compile(r"Start worker at:\s+(\S+)")
        log = self.tmp / f"{name}.log"

        def started():
            if proc.poll() is not None:
                raise AssertionError(f"worker {name} exited: {log.read_text()[-2000:]}")
            found = pattern.search(log.read_text())
            return found and found.group(1)

        address = _wait_for(started, 90, f"worker {name}")
        self.workers[address] = proc
        return address

    def kill(self, address: str) -> None:
        os.killpg(self.workers[address].pid, signal.SIGKILL)   # the worker and its algorithm subprocess
        self.workers[address].wait()

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def cluster(scale_env):
    """A real cluster with two one-thread workers (each advertises the test algorithm's package)."""
    found = Cluster(scale_env)
    try:
        found.add_worker("w1")
        found.add_worker("w2")
        yield found
    finally:
        found.close()
