"""The image recipe, checked without a Docker engine: base, user, CMD, build context, pins, workflows.

The install path itself runs in CI: .ci/steps/deploy.sh runs deploy/install.sh on the Dockerfile's
COPY sources and then the image's smoke commands.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys

import pytest
from deploy_files import DOCKERFILE, ROOT, dockerfile_cmd, dockerfile_env, load_resources, yaml

DOCKERIGNORE = ROOT / ".dockerignore"
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"
WORKFLOWS = ROOT / ".github" / "workflows"


def _constraints_module():
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        import constraints
    finally:
        sys.path.pop(0)
    return constraints


def copy_sources() -> list[str]:
    """Sources of the Dockerfile's COPY lines that read the build context (not `--from=`)."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    return sources


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative, with /) out of the context: the last matching line wins,
    and a line matches a path or any folder above it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, pattern.removeprefix("**/"))
               for p in prefixes):
            excluded = not negate
    return excluded


def test_image_is_slim_python_and_runs_as_the_pods_non_root_user():
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim\n" in text
    assert text.count("FROM ${PYTHON_IMAGE}") == 2  # build stage, then a clean runtime stage
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] == "10001:10001"
    pod_users = {w.doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
                 for w in load_resources() if w.pod is not None}
    assert pod_users == {10001}


def test_cmd_is_the_original_one_with_defaults():
    # Shell form, so that $ALG_SUB_PACKAGE and $ALG_NAME expand (as the original image did).
    assert dockerfile_cmd() == "python3 -m bl_reservoir.$ALG_SUB_PACKAGE.$ALG_NAME"
    env = dockerfile_env()
    assert (env["ALG_SUB_PACKAGE"], env["ALG_NAME"]) == ("energy_detection", "energy_detection")
    assert env["PATH"].startswith("/opt/bl-reservoir/venv/bin:")


def test_install_goes_through_install_sh_with_the_constraints():
    text = DOCKERFILE.read_text()
    assert "deploy/install.sh /opt/bl-reservoir/venv" in text
    script = (ROOT / "deploy" / "install.sh").read_text()
    assert '-c "$src/deploy/constraints.txt" "$src[$extras]"' in script
    assert '"$prefix/bin/bl-reservoir" env build "$package"' in script
    for path in (ROOT / "deploy" / "install.sh", ROOT / ".ci" / "steps" / "deploy.sh"):
        subprocess.run(["bash", "-n", str(path)], check=True)
    step = (ROOT / ".ci" / "steps" / "deploy.sh").read_text()
    assert "K8S_VERSION=1.30.0" in step and '--strict' in step
    assert "python3 -m bl_reservoir.energy_detection.energy_detection x.h5" in step


def test_copy_sources_exist_and_dockerignore_lets_them_in():
    sources = copy_sources()
    assert {"pyproject.toml", "README.md", "src/", "deploy/install.sh", "deploy/constraints.txt"} <= set(sources)
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: missing from the build context"
        # The source files git knows (tracked or new, not ignored): build artefacts may be dropped.
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", source],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        assert listed, f"COPY {source}: no files"
        for relative in listed:
            assert not dockerignored(relative), f"{relative} is copied but .dockerignore drops it"
    for kept_out in (".venv/bin/python", ".git/HEAD", "bl-scale/x/manifest.json", "tests/conftest.py",
                     "src/bl_reservoir/__pycache__/x.cpython-311.pyc", "src/bl_reservoir.egg-info/PKG-INFO"):
        assert dockerignored(kept_out), kept_out


def test_constraints_pin_every_runtime_dependency_and_nothing_test_only():
    constraints = _constraints_module()
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line}: not an exact pin"
            pins[name] = version
    assert "bl-reservoir" not in pins
    runtime, _ = constraints.runtime_closure("bl-reservoir", {"all"})
    unpinned = set(runtime) - set(pins)
    assert not unpinned, (f"unpinned runtime dependencies {sorted(unpinned)}: "
                          "run python deploy/constraints.py > deploy/constraints.txt")
    with_tests, _ = constraints.runtime_closure("bl-reservoir", {"test"})
    test_only = set(with_tests) - set(runtime)
    assert "kubernetes-validate" in test_only
    assert not test_only & set(pins), f"test-only packages pinned for the image: {sorted(test_only & set(pins))}"


def _workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return doc


def test_workflows_run_ci_on_pushes_and_push_commit_tagged_images_on_tags():
    ci = _workflow("ci.yml")
    assert "push" in ci["on"]
    assert [s["run"] for s in ci["jobs"]["ci"]["steps"] if "run" in s] == [".ci/run"]
    images = _workflow("images.yml")
    assert images["on"] == {"push": {"tags": ["v*"]}}
    job = images["jobs"]["image"]
    assert job["needs"] == "ci" and images["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert job["env"]["IMAGE"].endswith(":${{ github.sha }}")
    text = (WORKFLOWS / "images.yml").read_text()
    assert ":latest" not in text and "deploy/Dockerfile" in text
    pushed = [s["run"] for s in job["steps"] if s.get("name") == "push"]
    assert pushed == ['docker push "$IMAGE"']


@pytest.mark.parametrize("name", ["ci.yml", "images.yml"])
def test_workflows_pin_action_versions(name):
    for job in _workflow(name)["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]


def test_the_images_cmd_answers_help(tmp_path):
    """The first smoke command of the image (and of .ci/steps/deploy.sh): the default CMD with --help
    prints its usage and exits 0, rather than starting a worker."""
    env = dockerfile_env()
    module = f"bl_reservoir.{env['ALG_SUB_PACKAGE']}.{env['ALG_NAME']}"
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items()
                                            if k != "DASK_SCHEDULER_ADDRESS"})
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
