"""The Kubernetes manifests, checked offline: safety, pinning, resources, probes, and settings names (C5)."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _servers import free_port, require
from deploy_files import (
    K8S,
    ROOT,
    containers,
    dockerfile_cmd,
    dockerfile_env,
    load_resources,
    manifest_files,
    yaml,
)

SETTINGS = ROOT / "src" / "bl_reservoir" / "settings.py"
K8S_VERSION = "1.30.0"
_UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text) -> float:
    """A Kubernetes quantity ("500m", "20Gi", 6) as a number."""
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text)).groups()
    return float(number) * _UNITS[unit]


def settings_env_names() -> set[str]:
    """Environment names settings.py reads: `_env("X")`, `os.environ.get("X")`, `os.environ["X"]`, `os.getenv("X")`."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func in ("_env", "os.environ.get", "os.getenv"):
                names.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant):
                names.add(node.slice.value)
    return names


def dask_config_name(name: str) -> bool:
    """A `DASK_A__B__C` environment name that sets a key Dask's configuration has (Dask reads those itself)."""
    import dask
    import distributed  # noqa: F401  (adds its keys to Dask's configuration)

    if not name.startswith("DASK_"):
        return False
    try:
        dask.config.get(".".join(part.lower() for part in name.removeprefix("DASK_").split("__")))
    except KeyError:
        return False
    return True


def by_kind(resources, kind: str) -> dict[str, dict]:
    return {r.name: r.doc for r in resources if r.kind == kind}


def get_until_ok(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> tuple[int, bytes]:
    """GET `url` until the server answers (or its process exits): (HTTP status, body)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited with {proc.returncode}: {proc.stdout.read()[-2000:]!r}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout_s} s")


# ---- the worker DaemonSet ----

def test_bl_scale_daemonset_runs_the_original_command_on_the_algorithm_pool(resources):
    daemonsets = by_kind(resources, "DaemonSet")
    assert "bl-scale" in daemonsets
    pod = daemonsets["bl-scale"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "bl-algorithms"}
    assert {"key": "dedicated", "operator": "Equal", "value": "bl-algorithms", "effect": "NoSchedule"} \
        in pod["tolerations"]
    assert pod["terminationGracePeriodSeconds"] >= 1800  # long enough for a full-size job
    (worker,) = pod["containers"]
    # The image's CMD, exec'd so that SIGTERM reaches Python; no input means worker mode (C4).
    assert worker["command"] == ["/bin/sh", "-c", f"exec {dockerfile_cmd()}"]
    assert worker["envFrom"] == [{"configMapRef": {"name": "bl-reservoir-config"}}]


def test_worker_algorithm_in_the_configmap_is_a_real_module(resources):
    data = by_kind(resources, "ConfigMap")["bl-reservoir-config"]["data"]
    module = f"bl_reservoir.{data['ALG_SUB_PACKAGE']}.{data['ALG_NAME']}"
    assert (data["ALG_SUB_PACKAGE"], data["ALG_NAME"]) == ("energy_detection", "energy_detection")
    assert importlib.util.find_spec(module) is not None


def test_gpu_variant_asks_for_a_gpu_on_the_gpu_pool(resources):
    pod = by_kind(resources, "DaemonSet")["bl-scale-gpu"]["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "bl-gpu"}
    assert worker["command"][:2] == ["bl-reservoir", "worker"]


def test_every_workload_has_a_disruption_budget_or_is_a_single_scheduler(resources, workloads):
    budgets = [doc["spec"]["selector"]["matchLabels"] for doc in by_kind(resources, "PodDisruptionBudget").values()]
    for workload in workloads:
        labels = workload.doc["spec"]["template"]["metadata"]["labels"]
        covered = any(all(labels.get(k) == v for k, v in selector.items()) for selector in budgets)
        assert covered or workload.name == "dask-scheduler", f"{workload.name} has no PodDisruptionBudget"


# ---- safety ----

def test_no_container_is_privileged_or_runs_as_root(workloads):
    assert {w.name for w in workloads} >= {"bl-scale", "bl-web", "dask-scheduler"}
    for workload in workloads:
        pod = workload.pod
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, workload.name
        assert context["runAsUser"] != 0, workload.name
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), workload.name
        # No hostPath (no FUSE device, no key file from the node): only emptyDir scratch space.
        for volume in pod.get("volumes", []):
            assert set(volume) == {"name", "emptyDir"}, f"{workload.name}: volume {volume}"
        for container in containers(pod):
            security = container["securityContext"]
            where = f"{workload.name}/{container['name']}"
            assert security.get("privileged", False) is False, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security.get("runAsUser", context["runAsUser"]) != 0, where


def test_every_container_has_requests_and_limits(workloads):
    for workload in workloads:
        for container in containers(workload.pod):
            where = f"{workload.name}/{container['name']}"
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            for resource in ("cpu", "memory"):
                assert quantity(requests[resource]) <= quantity(limits[resource]), f"{where} {resource}"
    # Workers are Guaranteed QoS (requests == limits), so memory pressure evicts them last.
    worker = next(w for w in workloads if w.name == "bl-scale").pod["containers"][0]["resources"]
    assert {k: worker["requests"][k] for k in ("cpu", "memory")} == \
        {k: worker["limits"][k] for k in ("cpu", "memory")}


def test_writable_mounts_cover_where_jobs_write_and_leave_prebuilt_envs_visible(workloads, monkeypatch):
    """With the root filesystem read-only, every folder a job writes must be an emptyDir mount, and the
    algorithm environments built into the image must not be hidden under one."""
    import tempfile

    from bl_reservoir import envs, runner

    monkeypatch.setenv("BL_RESERVOIR_CACHE", dockerfile_env()["BL_RESERVOIR_CACHE"])
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)  # recomputed from the (unset) TMPDIR
    cache = Path(dockerfile_env()["BL_RESERVOIR_CACHE"])
    written = [runner.scratch_root(), cache / "inputs", Path("/tmp"), Path(dockerfile_env()["HOME"])]
    for workload in workloads:
        for container in containers(workload.pod):
            mounts = [Path(m["mountPath"]) for m in container.get("volumeMounts", [])]
            needs = written if workload.doc["spec"]["template"]["metadata"]["labels"].get(
                "app.kubernetes.io/component") == "worker" else [Path(tempfile.gettempdir())]
            for folder in needs:
                assert any(folder == m or m in folder.parents for m in mounts), f"{workload.name}: {folder}"
            hidden = [m for m in mounts if m == envs.envs_root() or m in envs.envs_root().parents]
            assert not hidden, f"{workload.name}: {hidden} hides the image's {envs.envs_root()}"


def test_images_are_pinned_to_a_commit_never_latest(workloads):
    kustomize_images = {}
    for path in K8S.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(path.read_text()).get("images", []):
            kustomize_images[entry["name"]] = entry["newTag"]
    for workload in workloads:
        for container in containers(workload.pod):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{workload.name}: {image} has no tag (that means :latest)"
            assert tag != "latest", f"{workload.name}: {image}"
            assert kustomize_images.get(name) == "COMMIT_SHA", f"{name} is not set per commit by kustomize"
    assert "latest" not in kustomize_images.values()


def test_service_account_uses_workload_identity_and_no_key_files(resources, workloads):
    (account,) = by_kind(resources, "ServiceAccount").values()
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    for workload in workloads:
        assert workload.pod["serviceAccountName"] == account["metadata"]["name"]
        for container in containers(workload.pod):
            names = {e["name"] for e in container.get("env", [])}
            assert "GOOGLE_APPLICATION_CREDENTIALS" not in names, workload.name


def test_no_secret_value_is_committed(resources):
    assert by_kind(resources, "Secret") == {}
    # The token is a secretKeyRef to a Secret that docs/deploy.md tells how to create.
    web = by_kind(resources, "Deployment")["bl-web"]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in web["env"] if "valueFrom" in e}
    assert refs["BL_RESERVOIR_TOKEN"] == {"name": "bl-reservoir", "key": "token"}
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for ref in refs.values():
        assert f"create secret generic {ref['name']}" in docs
        assert f"--from-literal={ref['key']}=" in docs


# ---- probes point at routes the servers really serve ----

def _probe(container: dict, kind: str) -> tuple[str, int]:
    """(path, containerPort) of an httpGet probe, the port name resolved."""
    probe = container[kind]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    return probe["path"], ports.get(probe["port"], probe["port"])


def _served_on(command: list[str], flag: str) -> int:
    return int(command[command.index(flag) + 1])


def test_web_probes_hit_healthz_on_the_served_port(resources):
    web = by_kind(resources, "Deployment")["bl-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["command"] == ["bl-reservoir", "serve", "--host", "0.0.0.0", "--port", "8000"]
    for kind in ("livenessProbe", "readinessProbe"):
        assert _probe(web, kind) == ("/healthz", _served_on(web["command"], "--port"))


def _run_with_free_ports(command: list[str], flags: dict[str, str], cwd: Path, env: dict | None = None):
    """Start a container's command here, its --host on 127.0.0.1 and each port flag on a free port."""
    command = list(command)
    command[command.index("--host") + 1] = "127.0.0.1"
    ports = {}
    for flag, form in flags.items():
        ports[flag] = free_port()
        command[command.index(flag) + 1] = form.format(port=ports[flag])
    executable = Path(sys.executable).with_name(command[0])
    proc = subprocess.Popen([str(executable), *command[1:]], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, ports


def _stop(proc: subprocess.Popen, kill: bool = False) -> None:
    """End a command started here, if it still runs, and close its output pipe (left open, a ResourceWarning)."""
    if proc.poll() is None:
        if kill:
            proc.kill()
        else:
            proc.terminate()
        proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.mark.slow
@pytest.mark.services
def test_web_command_serves_the_probe_route(resources, tmp_path):
    """Run the web container's own command (port swapped for a free one) and GET its probe path."""
    web = by_kind(resources, "Deployment")["bl-web"]["spec"]["template"]["spec"]["containers"][0]
    path, _ = _probe(web, "readinessProbe")
    env = {**os.environ, "BL_RESERVOIR_BUCKET": str(tmp_path / "bucket"),
           "BL_RESERVOIR_DB": f"sqlite:///{tmp_path / 'jobs.db'}", "BL_RESERVOIR_TOKEN": "t" * 32}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    proc, ports = _run_with_free_ports(web["command"], {"--port": "{port}"}, tmp_path, env)
    try:
        status, _ = get_until_ok(f"http://127.0.0.1:{ports['--port']}{path}", proc)
        assert status == 200
    finally:
        _stop(proc)


@pytest.mark.services
def test_scheduler_command_serves_its_probes(resources, tmp_path):
    """Run the scheduler container's own command (ports swapped for free ones) and hit its probes."""
    scheduler = by_kind(resources, "Deployment")["dask-scheduler"]["spec"]["template"]["spec"]["containers"][0]
    assert _probe(scheduler, "livenessProbe") == ("/health", 8787)
    # over HTTP: a bare TCP connect to the TLS port would fail its handshake, a warning per probe
    assert _probe(scheduler, "readinessProbe") == ("/health", 8787)
    # the Secret's certificates (PEM text), as the kubelet gives them to the container
    from distributed.security import Security

    certs = Security.temporary()
    secret = {"DASK_DISTRIBUTED__COMM__TLS__CA_FILE": certs.tls_ca_file,
              "DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__CERT": certs.tls_scheduler_cert,
              "DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__KEY": certs.tls_scheduler_key}
    assert {e["name"] for e in scheduler["env"]} == set(secret)
    proc, ports = _run_with_free_ports(scheduler["command"], {"--port": "{port}",
                                                               "--dashboard-address": "127.0.0.1:{port}"}, tmp_path,
                                       env={**os.environ, **secret})
    port, dashboard = ports["--port"], ports["--dashboard-address"]
    try:
        status, body = get_until_ok(f"http://127.0.0.1:{dashboard}/health", proc)
        assert (status, body) == (200, b"ok")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        import distributed

        with distributed.Client(f"tls://127.0.0.1:{port}", security=certs, timeout=30) as client:
            assert client.scheduler_info()["address"].startswith("tls://")
    finally:
        _stop(proc)


@pytest.mark.slow
@pytest.mark.services
def test_worker_command_joins_the_scheduler_for_its_algorithm(resources, tmp_path):
    """The bl-scale container's command, with the ConfigMap's environment, against a real local
    scheduler: a worker appears that advertises the algorithm's package, and SIGTERM ends it."""
    distributed = pytest.importorskip("distributed")
    pod = by_kind(resources, "DaemonSet")["bl-scale"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    data = by_kind(resources, "ConfigMap")["bl-reservoir-config"]["data"]
    scheduler, ports = _run_with_free_ports(
        ["dask", "scheduler", "--host", "x", "--port", "0", "--dashboard-address", "x"],
        {"--port": "{port}", "--dashboard-address": "127.0.0.1:{port}"}, tmp_path)
    address = f"tcp://127.0.0.1:{ports['--port']}"
    env = {**os.environ, **data, "DASK_SCHEDULER_ADDRESS": address, "BL_RESERVOIR_BUCKET": str(tmp_path / "bucket"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    worker = None
    try:
        get_until_ok(f"http://127.0.0.1:{ports['--dashboard-address']}/health", scheduler)
        worker = subprocess.Popen(container["command"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            (info,) = client.scheduler_info()["workers"].values()
        assert info["resources"].get(data["ALG_SUB_PACKAGE"], 0) >= 1, info["resources"]
        worker.terminate()  # what the kubelet sends first
        assert worker.wait(timeout=60) == 0, worker.stdout.read()[-2000:]
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                _stop(proc, kill=True)


# ---- settings names (C5) ----

def test_env_names_match_what_settings_reads(resources, workloads):
    read = settings_env_names()
    assert read >= {"BL_RESERVOIR_BUCKET", "BL_RESERVOIR_ALGORITHMS", "BL_RESERVOIR_DB",
                    "DASK_SCHEDULER_ADDRESS", "BL_RESERVOIR_TOKEN"}
    cmd_names = set(re.findall(r"\$(\w+)", dockerfile_cmd()))
    assert cmd_names == {"ALG_SUB_PACKAGE", "ALG_NAME"}
    configmaps = by_kind(resources, "ConfigMap")
    keys = {key for cm in configmaps.values() for key in cm["data"]}
    # Every ConfigMap key is read by the project or by the image's CMD: no dead or misspelt setting.
    assert keys <= read | cmd_names, f"not read by settings.py: {sorted(keys - read - cmd_names)}"
    given = set(keys)
    for workload in workloads:
        for container in containers(workload.pod):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps
            names = {e["name"] for e in container.get("env", []) if not dask_config_name(e["name"])}
            assert names <= read | cmd_names, f"{workload.name}: {sorted(names - read - cmd_names)}"
            given |= names
    image = set(dockerfile_env())
    project_names = {n for n in image if n.startswith(("BL_RESERVOIR_", "DASK_"))}
    assert project_names <= read, f"Dockerfile sets unread {sorted(project_names - read)}"
    # ...and every name settings.py reads is given by the manifests or the image.
    assert read <= given | image, f"never set for the cluster: {sorted(read - given - image)}"
    assert {"BL_RESERVOIR_BUCKET", "DASK_SCHEDULER_ADDRESS"} <= keys


# ---- kustomize and the validator ----

def test_kustomizations_list_every_manifest():
    for kustomization in K8S.rglob("kustomization.yaml"):
        folder = kustomization.parent
        listed = yaml.safe_load(kustomization.read_text())["resources"]
        files = {p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"}
        assert {r for r in listed if r.endswith(".yaml")} == files, folder
        for entry in listed:
            assert (folder / entry).exists(), f"{kustomization}: {entry}"


def test_manifests_validate_strictly_against_kubernetes_1_30():
    tool = shutil.which("kubernetes-validate") or shutil.which(
        "kubernetes-validate", path=os.path.dirname(sys.executable))
    require(tool is not None, "kubernetes-validate is not installed (pip install kubernetes-validate)")
    files = [str(p) for p in manifest_files()]
    proc = subprocess.run([tool, "-k", K8S_VERSION, "--strict", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = proc.stdout.count(" passed for resource ")
    assert passed == len(load_resources()), proc.stdout
