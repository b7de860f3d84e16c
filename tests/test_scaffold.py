"""`bl-reservoir new-algorithm`: the scaffold runs as-is, as an external package in its own venv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bl_reservoir import envs, runner
from bl_reservoir.algorithms import get_algorithm
from bl_reservoir.errors import UsageError
from bl_reservoir.results import read_results
from bl_reservoir.scaffold import new_algorithm

#: Added to the scaffolded package: reports which Python ran it and whether it could see bl_reservoir.
PROBE = '''
import importlib.util, pickle, sys
from pathlib import Path
import numpy as np, pandas as pd
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
header = {"prefix": sys.prefix, "sees_bl_reservoir": importlib.util.find_spec("bl_reservoir") is not None,
          "cwd": str(Path.cwd())}
pickle.dump(header, open(out / "header.pkl", "wb"))
pd.DataFrame({"index": [], "freqs": [], "coarse_channel": []}).to_pickle(out / "info_df.pkl")
np.save(out / "filtered.npy", np.zeros((0, 16, 8), np.float32))
'''


def test_scaffold_files_and_refusals(tmp_path, capsys):
    from bl_reservoir.cli import main

    assert main(["new-algorithm", "my_search", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "my_search"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "requirements.txt", "search.py"]
    assert "numpy" in (folder / "requirements.txt").read_text().split()
    assert "bl-reservoir run my_search/search" in (folder / "README.md").read_text()
    assert f"created {folder}" in capsys.readouterr().out
    with pytest.raises(UsageError, match="already exists and is not empty"):
        new_algorithm("my_search", tmp_path)
    with pytest.raises(UsageError, match="must be Python identifiers"):
        new_algorithm("my-search", tmp_path)


@pytest.mark.slow
@pytest.mark.services
def test_scaffold_runs_as_is_in_its_own_environment(tmp_path, monkeypatch, strong_signal_obs):
    path, truth = strong_signal_obs
    algos = tmp_path / "algos"
    package = new_algorithm("my_search", algos)
    (package / "probe.py").write_text(PROBE)
    monkeypatch.setenv("BL_RESERVOIR_ALGORITHMS", str(algos))
    monkeypatch.setenv("BL_RESERVOIR_CACHE", str(tmp_path / "cache"))
    assert get_algorithm("my_search/search").env_state() == "not built"
    bucket = tmp_path / "bucket"
    events = []
    outcome = runner.run_job("my_search/search", str(path), bucket=str(bucket), on_event=events.append)
    env = envs.env_path(package)
    assert events[2]["command"][:2] == [str(envs.env_python(env)), str(package / "search.py")]
    assert get_algorithm("my_search/search").env_state() == "built"
    result = read_results(outcome.result_uri)
    assert Path(outcome.result_uri) == bucket / "strong" / "my_search" / "search"
    assert result.manifest["algorithm"]["version"] == get_algorithm("my_search/search").version
    assert list(result.hits["coarse_channel"]) == [0, 1]
    for cc, injected in zip(result.hits["coarse_channel"], truth["index"]):
        found = int(result.hits["index"][cc])
        assert abs(found - int(injected)) < 60  # where the drifting signal is brightest
    assert result.stamps.shape == (2, 16, 64)
    assert "2 hits written" in (Path(outcome.result_uri) / "log.txt").read_text()

    # Same venv for the package's other script, and it is isolated from this project.
    probe = runner.run_job("my_search/probe", str(path), bucket=str(bucket))
    header = json.loads((Path(probe.result_uri) / "header.json").read_text())
    assert header == {"prefix": str(env), "sees_bl_reservoir": False, "cwd": str(package)}


@pytest.mark.parametrize("ext", [".fil", ".h5"])
def test_scaffold_header_has_the_angles_the_builtins_give(tmp_path, ext):
    """RA/Dec in decimal hours/degrees from both file kinds, as `bl_reservoir.io` (and so the built-ins'
    header.json) gives them, not SIGPROC's packed hhmmss.s."""
    import pickle
    import subprocess
    import sys

    from bl_reservoir.io import open_observation
    from bl_reservoir.synth import make_observation

    path, _ = make_observation(tmp_path / f"obs{ext}", n_coarse_channels=1, coarse_channel_width=4096, seed=1)
    folder = new_algorithm("my_search", tmp_path / "algos")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(folder / "search.py"), str(path), str(out)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    with open(out / "header.pkl", "rb") as f:
        header = pickle.load(f)
    with open_observation(path) as obs:
        expected = obs.header
    assert header["src_raj"] == pytest.approx(expected["src_raj"], abs=1e-9)
    assert header["src_dej"] == pytest.approx(expected["src_dej"], abs=1e-9)
    assert 0 <= header["src_raj"] < 24 and -90 <= header["src_dej"] <= 90
