"""`bl-reservoir demo`, the README's main command, end to end on the embedded cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bl_reservoir.demo import available_algorithms
from bl_reservoir.scale.index import HitIndex
from bl_reservoir.scale.jobs import JobStore


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_every_search_and_indexes_the_cadence(tmp_path):
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    out = subprocess.run([sys.executable, "-m", "bl_reservoir.cli", "demo", "--bucket", str(tmp_path / "bucket"),
                          "--db", db, "--out", str(tmp_path / "cadence")], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bl-reservoir serve" in out.stdout and str(tmp_path / "bucket") in out.stdout
    store = JobStore(db)
    campaigns = store.list_campaigns()
    assert sorted(c["algorithm"] for c in campaigns) == sorted(available_algorithms())
    assert all(store.campaign_counts(c["id"])["succeeded"] == 6 for c in campaigns)
    index = HitIndex(db)
    assert index.count_observations() == 6
    if "dedoppler/search" in available_algorithms():
        # the injected drifting signal (0.4 Hz/s) is seen in ON files only; the stationary one everywhere
        drifting = {h["observation"] for h in index.query_hits(algorithm="dedoppler/search", drift_min=0.3,
                                                                drift_max=0.5, min_snr=20)}
        assert drifting and all("_ON_" in name for name in drifting)
        stationary = {h["observation"] for h in index.query_hits(algorithm="dedoppler/search", drift_min=-0.01,
                                                                  drift_max=0.01, min_snr=40)}
        assert len(stationary) == 6
        # the campaign found the cadence and its events: the two ON-only drifting signals, not the line
        # seen in all six files; the demo's last lines say so, each with its picture
        from bl_reservoir.scale.cadences import CadenceStore

        cadence = CadenceStore(db).get_cadence("cadence_0_ON_DEMO_TARGET")
        assert cadence["state"] == "succeeded" and len(cadence["events"]) == 2
        assert sorted(round(e["drift_rate"], 1) for e in cadence["events"]) == [-0.3, 0.4]
        assert all(abs(e["drift_rate"]) > 0.1 for e in cadence["events"])
        last = out.stdout.strip().splitlines()[-3:]
        assert last[0] == "cadence cadence_0_ON_DEMO_TARGET (DEMO_TARGET): 2 candidate events"
        for line in last[1:]:
            assert " Hz/s, in 3 of 3 ONs, 0 OFFs: " in line
            assert Path(line.rsplit(": ", 1)[1]).read_bytes()[:4] == b"\x89PNG"
