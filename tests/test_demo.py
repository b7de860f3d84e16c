"""`bl-reservoir demo`, the README's main command, end to end on the embedded cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bl_reservoir.demo import available_algorithms
from bl_reservoir.scale.store import Store


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_every_search_and_indexes_the_cadence(tmp_path):
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    out = subprocess.run([sys.executable, "-m", "bl_reservoir.cli", "demo", "--bucket", str(tmp_path / "bucket"),
                          "--db", db, "--out", str(tmp_path / "cadence")], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bl-reservoir serve" in out.stdout and str(tmp_path / "bucket") in out.stdout
    store = Store(db)
    campaigns = store.list_campaigns()
    assert sorted(c["algorithm"] for c in campaigns) == sorted(available_algorithms())
    assert all(store.campaign_counts(c["id"])["succeeded"] == 6 for c in campaigns)
    assert store.count_observations() == 6
    if "dedoppler/search" in available_algorithms():
        # the injected drifting signal (0.4 Hz/s) is seen in ON files only; the stationary one everywhere
        drifting = {h["observation"] for h in store.query_hits(algorithm="dedoppler/search", drift_min=0.3,
                                                                drift_max=0.5, min_snr=20)}
        assert drifting and all("_ON_" in name for name in drifting)
        stationary = {h["observation"] for h in store.query_hits(algorithm="dedoppler/search", drift_min=-0.01,
                                                                  drift_max=0.01, min_snr=40)}
        assert len(stationary) == 6
