"""The Dask control plane: TLS from our settings (or Dask's), loopback by default, no dashboard unless asked,
and no job-store URL in a task's arguments. Real schedulers and workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pickle
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import SLOW_ALG, Cluster, _wait_for, cli

from bl_reservoir.errors import UsageError
from bl_reservoir.scale.jobs import JobStore
from bl_reservoir.scale.security import connect, dask_security

TLS_NAMES = ("BL_RESERVOIR_TLS_CA_FILE", "BL_RESERVOIR_TLS_CERT", "BL_RESERVOIR_TLS_KEY")


@pytest.fixture
def certs(tmp_path):
    """A self-signed CA-and-certificate (Dask's `Security.temporary`) as PEM files: (ca, cert, key) paths."""
    from distributed.security import Security

    made = Security.temporary()
    folder = tmp_path / "tls"
    folder.mkdir()
    paths = []
    for name, text in (("ca.pem", made.tls_ca_file), ("cert.pem", made.tls_client_cert),
                       ("key.pem", made.tls_client_key)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o600)
        paths.append(folder / name)
    return tuple(paths)


@pytest.fixture
def no_tls(monkeypatch):
    for name in TLS_NAMES:
        monkeypatch.delenv(name, raising=False)


def _use(monkeypatch, certs) -> None:
    for name, path in zip(TLS_NAMES, certs):
        monkeypatch.setenv(name, str(path))


# ---- settings: one line for every way TLS can be misconfigured ------------------------------------------

def test_tls_settings_are_all_three_or_none(monkeypatch, certs, no_tls):
    assert dask_security().require_encryption is False   # none set, no Dask TLS config: plain TCP
    monkeypatch.setenv("BL_RESERVOIR_TLS_CA_FILE", str(certs[0]))
    with pytest.raises(UsageError, match="BL_RESERVOIR_TLS_CERT, BL_RESERVOIR_TLS_KEY not set$"):
        dask_security()
    _use(monkeypatch, certs)
    found = dask_security("tls://127.0.0.1:8786")
    assert found.require_encryption is True
    assert {found.tls_ca_file, found.tls_client_cert, found.tls_worker_cert, found.tls_scheduler_cert} == \
        {str(certs[0]), str(certs[1])}
    assert found.tls_client_key == found.tls_worker_key == str(certs[2])
    # the PEM text itself, as a Kubernetes secretKeyRef gives it
    monkeypatch.setenv("BL_RESERVOIR_TLS_KEY", certs[2].read_text())
    assert dask_security().tls_worker_key == certs[2].read_text().strip()


def test_tls_misconfiguration_is_one_line(monkeypatch, certs, tmp_path, no_tls):
    with pytest.raises(UsageError) as refused:
        dask_security("tls://10.0.0.1:8786")
    assert str(refused.value) == ("tls://10.0.0.1:8786: a tls:// scheduler needs certificates: set "
                                  "BL_RESERVOIR_TLS_CA_FILE, BL_RESERVOIR_TLS_CERT, BL_RESERVOIR_TLS_KEY")
    _use(monkeypatch, certs)
    with pytest.raises(UsageError, match=r"^tcp://10.0.0.1:8786: TLS is required .* must be tls://$"):
        dask_security("tcp://10.0.0.1:8786")
    monkeypatch.setenv("BL_RESERVOIR_TLS_CERT", str(tmp_path / "missing.pem"))
    with pytest.raises(UsageError) as refused:
        dask_security()
    assert str(refused.value) == f"{tmp_path / 'missing.pem'}: no such certificate file (BL_RESERVOIR_TLS_CERT)"
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    monkeypatch.setenv("BL_RESERVOIR_TLS_CERT", str(tmp_path / "garbage.pem"))
    with pytest.raises(UsageError) as refused:
        dask_security()
    assert str(refused.value).startswith("the Dask TLS certificates (BL_RESERVOIR_TLS_CA_FILE, ")
    assert "\n" not in str(refused.value)


def test_dask_own_tls_config_applies_when_ours_is_unset(certs, no_tls):
    import dask

    ca, cert, key = (str(p) for p in certs)
    with dask.config.set({"distributed.comm.tls.ca-file": ca, "distributed.comm.tls.client.cert": cert,
                          "distributed.comm.tls.client.key": key, "distributed.comm.require-encryption": True}):
        found = dask_security("tls://127.0.0.1:8786")
        assert (found.tls_ca_file, found.tls_client_cert, found.require_encryption) == (ca, cert, True)


# ---- a TLS scheduler: strangers refused, our campaigns run --------------------------------------------------

class TlsCluster(Cluster):
    """`dask scheduler` with TLS (the deploy manifest's flags) and `bl-reservoir worker` processes."""

    def __init__(self, tmp_path: Path, certs: tuple[Path, Path, Path]):
        self.tmp, self.procs, self.workers = tmp_path, [], {}
        scheduler_file = tmp_path / "scheduler.json"
        ca, cert, key = (str(p) for p in certs)
        self._spawn([str(Path(sys.executable).with_name("dask")), "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--protocol", "tls", "--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key,
                     "--scheduler-file", str(scheduler_file)], "scheduler")
        _wait_for(scheduler_file.exists, 60, "the scheduler file")
        self.address = json.loads(_wait_for(scheduler_file.read_text, 10, "the scheduler address"))["address"]


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.timeout(300)
def test_tls_scheduler_refuses_strangers_and_runs_our_campaigns(scale_env, small_obs, certs, monkeypatch, no_tls):
    from distributed import Client
    from distributed.security import Security

    cluster = TlsCluster(scale_env, certs)
    try:
        assert cluster.address.startswith("tls://127.0.0.1:")
        # strangers: no certificate, plain TCP, or a certificate of another CA
        with pytest.raises(UsageError, match="a tls:// scheduler needs certificates"):
            connect(cluster.address, timeout_s=3)
        with pytest.raises(OSError):
            Client(cluster.address.replace("tls://", "tcp://"), timeout="3s")
        with pytest.raises(OSError):
            Client(cluster.address, security=Security.temporary(), timeout="3s")

        _use(monkeypatch, certs)   # from here on, our processes (workers, submitters, the web) have the certs
        worker = cluster.add_worker("w1")
        assert worker.startswith("tls://127.0.0.1:")
        inputs = [str(small_obs(f"obs{i}.h5", seed=i + 1)[0]) for i in range(2)]
        out = cli("submit", SLOW_ALG, inputs[0], "--scheduler", cluster.address)
        assert out.returncode == 0, out.stderr[-3000:]
        store = JobStore(os.environ["BL_RESERVOIR_DB"])
        (job,) = store.list_jobs()
        assert (job["state"], job["worker"]) == ("succeeded", worker)

        # detached (the workers write the store), then cancelled through a TLS client
        out = cli("submit", SLOW_ALG, inputs[1], "--scheduler", cluster.address, "--detach", "--", "--seconds", "60")
        assert out.returncode == 0, out.stderr[-3000:]
        detached = out.stdout.split()[-1]
        _wait_for(lambda: store.list_jobs(detached, state="running"), 60, "the detached job running")
        out = cli("cancel", detached, "--scheduler", cluster.address)
        assert out.returncode == 0 and "1 jobs cancelled" in out.stdout, out.stderr[-3000:]
        assert [j["state"] for j in store.list_jobs(detached)] == ["cancelled"]

        # the web's Workers page reaches it too
        from bl_reservoir.web.workers import WorkerView

        view = WorkerView(cluster.address)
        try:
            body = view.describe(store)
        finally:
            view.close()
        assert body["error"] is None and [w["address"] for w in body["workers"]] == [worker]
    finally:
        cluster.close()


# ---- loopback by default --------------------------------------------------------------------------------

def _listening(pid: int) -> set[str]:
    import psutil

    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.timeout(180)
def test_worker_listens_on_loopback_unless_told(cluster, monkeypatch):
    for address, proc in cluster.workers.items():   # the fixture's two `bl-reservoir worker`s
        assert address.startswith("tcp://127.0.0.1:")
        assert _listening(proc.pid) == {"127.0.0.1"}   # the comm port and its HTTP server (health, metrics)
    from bl_reservoir import settings

    monkeypatch.delenv("BL_RESERVOIR_WORKER_HOST", raising=False)
    assert settings.worker_host() == "127.0.0.1"
    monkeypatch.setenv("BL_RESERVOIR_WORKER_HOST", "10.1.2.3")
    assert (settings.worker_host(), settings.worker_host("0.0.0.0")) == ("10.1.2.3", "0.0.0.0")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_embedded_cluster_is_loopback_only_and_dashboard_is_off_unless_asked(no_tls):
    from bl_reservoir.scale.engine import Engine

    for processes in (False, True):
        for dashboard in (False, True):
            with Engine(n_workers=1, processes=processes, dashboard=dashboard) as engine:
                scheduler = engine.cluster.scheduler
                assert scheduler.address.startswith("tcp://127.0.0.1:" if processes else "inproc://")
                assert {s.getsockname()[0] for s in scheduler.http_server._sockets.values()} == {"127.0.0.1"}
                base = f"http://127.0.0.1:{scheduler.http_server.port}"
                assert _get(f"{base}/health") == 200
                assert _get(f"{base}/info/main/workers.html") == (200 if dashboard else 404)


# ---- the job store's URL never travels with a task --------------------------------------------------------

@pytest.fixture
def inproc_scheduler():
    """A real scheduler and one two-thread worker in this process (monkeypatches reach the tasks)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as running:
        yield running


@pytest.mark.slow
def test_detached_tasks_carry_no_store_url_and_still_record_their_jobs(inproc_scheduler, small_obs, tmp_path,
                                                                        monkeypatch, no_tls):
    from distributed.diagnostics.plugin import SchedulerPlugin

    from bl_reservoir.scale import campaigns
    from bl_reservoir.scale.tasks import task_key

    class Submitted(SchedulerPlugin):
        """Each of our tasks' run_spec (function and arguments), pickled, as the scheduler got it."""

        def __init__(self):
            self.specs: dict[str, bytes] = {}

        def transition(self, key, start, finish, *args, **kwargs):
            if str(key).startswith("blr-") and key not in self.specs:
                self.specs[key] = pickle.dumps(scheduler.tasks[key].run_spec)

    secret_db = tmp_path / "s3cret-store.db"
    url = f"sqlite:///{secret_db}"
    monkeypatch.setenv("BL_RESERVOIR_DB", url)   # the submitter's and the (in-process) worker's store
    monkeypatch.setenv("BL_RESERVOIR_BUCKET", str(tmp_path / "bucket"))
    scheduler = inproc_scheduler.scheduler
    seen = Submitted()
    scheduler.add_plugin(seen)
    inputs = [str(small_obs(f"o{i}.h5", seed=i + 1)[0]) for i in range(2)]
    cid, _ = campaigns.submit("energy_detection/preprocess_fine", inputs, detach=True,
                              scheduler=inproc_scheduler.scheduler_address)
    store = JobStore(url)
    assert sorted(seen.specs) == sorted(task_key(j["id"]) for j in store.list_jobs(cid))
    for spec in seen.specs.values():
        assert b"run_task" in spec and any(path.encode() in spec for path in inputs)
        assert b"s3cret-store" not in spec and b"sqlite" not in spec
    _wait_for(lambda: store.get_campaign(cid)["state"] == "finished", 120, "the detached campaign")
    assert store.campaign_counts(cid)["succeeded"] == 2


def test_detach_fails_its_jobs_when_workers_cannot_see_the_store(inproc_scheduler, small_obs, tmp_path, monkeypatch,
                                                                   no_tls):
    from bl_reservoir.scale import campaigns

    monkeypatch.setenv("BL_RESERVOIR_DB", f"sqlite:///{tmp_path / 'workers.db'}")   # what the worker reads
    submitted = f"sqlite:///{tmp_path / 'submitter.db'}"
    path = str(small_obs("x.h5")[0])
    with pytest.raises(UsageError) as refused:
        campaigns.submit("energy_detection/preprocess_fine", [path], db=submitted, bucket=str(tmp_path / "b"),
                         scheduler=inproc_scheduler.scheduler_address, detach=True)
    message = str(refused.value)
    assert message.startswith("1 of 1 workers cannot record this detached campaign, e.g. inproc://")
    assert "set BL_RESERVOIR_DB on the workers" in message and "\n" not in message
    (job,) = JobStore(submitted).list_jobs()
    assert (job["state"], job["error"]) == ("failed", message)   # visible, not queued for ever
