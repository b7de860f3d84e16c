"""`bl-reservoir run` puts its result in the hits index beside the bucket, so the front end lists it even
when campaigns have filled the store (its home page reads the index, scanning the bucket only when empty)."""

from __future__ import annotations

import pandas as pd

from bl_reservoir.cli import main
from bl_reservoir.scale.index import HitIndex


def test_a_run_result_is_indexed_beside_a_campaigns(strong_signal_obs, tmp_path, monkeypatch):
    path, _ = strong_signal_obs
    bucket = tmp_path / "bucket"
    monkeypatch.setenv("BL_RESERVOIR_CACHE", str(tmp_path / "cache"))
    index = HitIndex(f"sqlite:///{tmp_path / 'bucket.db'}")   # the default store beside a local bucket
    index.index_result("earlier", "another_obs", "dedoppler/search", "/b/another_obs/dedoppler/search",
                       {"source_name": "X", "tstart": 60000.0}, pd.DataFrame({"freqs": [1.0]}))
    assert main(["run", "energy_detection/preprocess_fine", str(path), "--bucket", str(bucket), "--",
                 "--threshold", "100"]) == 0
    listed = {o["obs_name"]: o for o in index.list_observations()}
    assert sorted(listed) == ["another_obs", "strong"]
    assert listed["strong"]["algorithms"] == ["energy_detection/preprocess_fine"] and listed["strong"]["n_hits"] > 0
    index.close()
