"""The turboSETI adapter (examples/algorithms/turboseti): a real third-party search in its own venv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bl_reservoir import runner
from bl_reservoir.algorithms import get_algorithm
from bl_reservoir.results import read_results

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "algorithms"

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_turboseti_finds_the_injected_signals(tmp_path, monkeypatch, strong_signal_obs):
    path, truth = strong_signal_obs
    monkeypatch.setenv("BL_RESERVOIR_ALGORITHMS", str(EXAMPLES))
    # The environment (about 1 GB) goes to the usual cache, keyed by the requirements' hash, so a
    # second run reuses it, as `bl-reservoir env build turboseti` would; pip's cache is reused too.
    alg = get_algorithm("turboseti/find_et")
    assert alg.kind == "external" and alg.package_dir == EXAMPLES / "turboseti"
    outcome = runner.run_job("turboseti/find_et", str(path), bucket=str(tmp_path / "bucket"),
                             options=["--max-drift", "2", "--snr", "20"])
    folder = Path(outcome.result_uri)
    assert (folder / "strong.dat").is_file() and (folder / "log.txt").is_file()
    result = read_results(folder)
    hits = result.hits.sort_values("index").reset_index(drop=True)
    assert list(hits["index"]) == [int(i) for i in truth["index"]]
    assert list(hits["coarse_channel"]) == [0, 1]
    np.testing.assert_allclose(hits["drift_rate"], truth["drift_rate"], atol=0.02)  # Hz/s
    assert (hits["snr"] > 20).all()
    assert result.stamps.shape == (2, 16, 64)
    assert result.manifest["parameters"] == {"max_drift": "2", "snr": "20"}
    assert "turbo_seti version 2.3.2" in (folder / "log.txt").read_text()
