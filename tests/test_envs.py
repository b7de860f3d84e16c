"""Virtual environments of external packages: isolated, keyed by requirements, built once under a lock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bl_reservoir import envs
from bl_reservoir.errors import EnvBuildError

pytestmark = pytest.mark.slow

_BUILD = "import sys; from bl_reservoir.envs import build_env; print(build_env(sys.argv[1]))"


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package with no requirements (a venv with nothing but pip: quick to build)."""
    monkeypatch.setenv("BL_RESERVOIR_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "algos" / "tiny"
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text("# nothing beyond the standard library\n")
    (folder / "run.py").write_text("print('hi')\n")
    return folder


def _entries():
    return sorted(p.name for p in envs.envs_root().iterdir())


def test_racing_builders_share_one_environment(package):
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(package)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    paths = {p.communicate(timeout=300)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    target = envs.env_path(package)
    assert paths == {str(target)}
    assert _entries() == [".tiny.lock", target.name]  # no half-built or duplicate folders
    assert envs.env_state(package) == "built"
    # Isolated: the venv's python does not see this project, and runs from its own prefix.
    probe = subprocess.run([str(envs.env_python(target)), "-c",
                            "import sys, importlib.util as u; print(sys.prefix, u.find_spec('bl_reservoir') is None)"],
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True)
    assert probe.stdout.split() == [str(target), "True"]


def test_changed_requirements_rebuild_and_drop_the_old_environment(package):
    old = envs.build_env(package)
    (package / "requirements.txt").write_text("# nothing, but a different file\n\n")
    assert envs.env_state(package) == "stale"
    new = envs.build_env(package)
    assert new != old and not old.exists() and envs.env_state(package) == "built"
    assert envs.build_env(package) == new  # reused, not rebuilt


def test_failed_build_says_why_and_leaves_nothing(package):
    (package / "requirements.txt").write_text("/nonexistent/blr_missing-1.0-py3-none-any.whl\n")
    with pytest.raises(EnvBuildError, match=r"tiny: environment build failed: python -m pip exited with 1: .*"
                                            r"blr_missing-1.0-py3-none-any.whl"):
        envs.build_env(package)
    assert _entries() == [".tiny.lock"]
    assert envs.env_state(package) == "not built"


def test_cli_env_build_by_folder_or_name(package, capsys, monkeypatch):
    from bl_reservoir.cli import main

    assert main(["env", "build", str(package)]) == 0
    assert f"tiny: built {envs.env_path(package)}" in capsys.readouterr().out
    monkeypatch.setenv("BL_RESERVOIR_ALGORITHMS", str(package.parent))
    assert main(["env", "build", "tiny"]) == 0
    assert "tiny: up to date" in capsys.readouterr().out
    assert envs.build_env(package) == envs.env_path(package)


def test_a_folder_without_requirements_is_refused(tmp_path):
    with pytest.raises(EnvBuildError, match=r"nothing: environment build failed: .*nothing has no requirements.txt"):
        envs.build_env(tmp_path / "nothing")
