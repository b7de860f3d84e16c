"""`--scheduler`: the same measurement as a BL@Scale campaign on a real Dask scheduler on 127.0.0.1."""

import json

import pytest

from bl_reservoir.cli import main


@pytest.mark.slow
def test_campaign_on_a_dask_scheduler(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        code = main(["sensitivity", "dedoppler/search", "--snr", "5:45:2", "--drift", "0", "--width", "4",
                     "--trials", "2", "--coarse-channel-width", "16384", "--noise-channels", "1",
                     "--name", "on-dask", "--out", str(tmp_path / "out"), "--bucket", str(tmp_path / "bucket"),
                     "--scheduler", cluster.scheduler_address])
    assert code == 0
    doc = json.loads((tmp_path / "out" / "sensitivity.json").read_text())
    entry = doc["algorithms"]["dedoppler/search"]
    assert [(r["snr"], r["n"], r["recall"]) for r in entry["recall_by_snr"]] == [(5.0, 4, 0.0), (45.0, 4, 1.0)]
    runs = tmp_path / "bucket" / "sensitivity" / "on-dask" / "runs"
    assert (runs / "signals_000" / "dedoppler" / "search" / "manifest.json").is_file()
    assert (runs / "noise_000" / "dedoppler" / "search" / "manifest.json").is_file()
    assert (tmp_path / "bucket" / "sensitivity" / "on-dask" / "report.md").is_file()
