"""The hits index against SQLite and PostgreSQL: hits across observations, the observations table."""

from __future__ import annotations

import pandas as pd
import pytest

from bl_reservoir.errors import UsageError
from bl_reservoir.scale.index import band_of

HEADER = {"source_name": "HIP65057", "tstart": 58402.78, "fch1": 1420.8, "foff": -2.7939677238464355e-6,
          "nchans": 262144}


def test_hits_index_query_across_observations(index):
    names = ["GBT_A_ON", "GBT_B_OFF", "GBT_C_ON"]
    for k, name in enumerate(names):
        hits = pd.DataFrame({"index": [10, 20, 30], "freqs": [1420.1 + k * 0.25, 1420.4, 1421.0],
                             "coarse_channel": [0, 0, 1], "drift_rate": [0.5, -1.0, 2.0],
                             "snr": [35.0, 12.0, 50.0 + k]})
        assert index.index_result(None, name, "dedoppler/search", f"/b/{name}/dedoppler/search",
                                  {**HEADER, "source_name": f"SRC{k}"}, hits) == 3
    energy = pd.DataFrame({"index": [5], "freqs": [1420.25], "coarse_channel": [0], "statistic": [4000.0],
                           "pvalue": [1e-30]})
    index.index_result(None, "GBT_A_ON", "energy_detection/preprocess_fine",
                       "/b/GBT_A_ON/energy_detection/preprocess_fine", HEADER, energy)
    found = index.query_hits(fmin=1420.0, fmax=1420.5, min_snr=30)
    assert [(h["observation"], h["frequency_mhz"], h["row"]) for h in found] == [
        ("GBT_A_ON", 1420.1, 0), ("GBT_B_OFF", pytest.approx(1420.35), 0)]
    assert found[0]["drift_rate"] == 0.5 and found[0]["result_uri"] == "/b/GBT_A_ON/dedoppler/search"
    assert [h["statistic"] for h in index.query_hits(min_statistic=1000)] == [4000.0]
    assert len(index.query_hits(drift_min=1.0)) == 3
    assert len(index.query_hits(observation="GBT_C_ON", limit=2)) == 2
    assert len(index.query_hits(observation="GBT_C_ON", limit=2, offset=2)) == 1
    # re-indexing the same folder replaces its rows rather than doubling them
    index.index_result(None, "GBT_A_ON", "energy_detection/preprocess_fine",
                       "/b/GBT_A_ON/energy_detection/preprocess_fine", HEADER, energy)
    assert len(index.query_hits(algorithm="energy_detection/preprocess_fine")) == 1


def test_observations_table(index):
    hits = pd.DataFrame({"index": [1, 2], "freqs": [1420.2, 1420.3], "coarse_channel": [0, 0]})
    headers = {name: {**HEADER, "tstart": 58000.0 + k, "source_name": "VOYAGER" if k == 1 else "HIP1"}
               for k, name in enumerate(["b_obs", "a_obs", "c_obs"])}
    for k, name in enumerate(headers):
        index.index_result(None, name, "energy_detection/preprocess_fine", f"/b/{name}/e/p", headers[name],
                           hits.iloc[: k + 1] if k < 2 else hits)
    index.index_result(None, "a_obs", "dedoppler/search", "/b/a_obs/d/s", headers["a_obs"], hits)
    listed = index.list_observations()
    assert [o["obs_name"] for o in listed] == ["a_obs", "b_obs", "c_obs"]
    a = listed[0]
    assert a["algorithms"] == ["dedoppler/search", "energy_detection/preprocess_fine"]
    assert a["hits"] == {"dedoppler/search": 2, "energy_detection/preprocess_fine": 2} and a["n_hits"] == 4
    assert a["band"] == "L" and a["fmax_mhz"] == pytest.approx(1420.8)
    assert a["fmin_mhz"] == pytest.approx(1420.8 - 2.7939677238464355e-6 * 262144)
    assert [o["obs_name"] for o in index.list_observations(sort="mjd", descending=True)] == ["c_obs", "a_obs", "b_obs"]
    assert [o["obs_name"] for o in index.list_observations(search="voyager")] == ["a_obs"]
    assert index.count_observations() == 3 and index.count_observations("hip") == 2
    assert [o["obs_name"] for o in index.list_observations(limit=1, offset=1)] == ["b_obs"]
    detail = index.get_observation("a_obs")
    assert detail["source"] == "VOYAGER" and detail["mjd"] == 58001.0 and len(detail["results"]) == 2
    assert index.get_observation("missing") is None
    with pytest.raises(UsageError, match="sort must be one of"):
        index.list_observations(sort="drop table")


def test_band_of():
    assert band_of(1100.0, 1900.0) == "L" and band_of(4000.0, 7800.0) == "C" and band_of(None, 1.0) is None


def test_one_jobs_bad_numbers_never_stop_the_index(index, caplog):
    """Non-finite and absurd header values, NaN and infinite hit columns (issue 18): what can be indexed is,
    bad numbers become None, hits without a finite frequency are left out, and a warning says so."""
    nan, inf = float("nan"), float("inf")
    hits = pd.DataFrame({"index": [1, 2, 3, 4], "freqs": [1420.1, nan, inf, 1420.4], "coarse_channel": [0, 0, 0, 0],
                         "drift_rate": [nan, 0.5, 0.5, -inf], "snr": [inf, 20.0, 20.0, 1e308 * 10],
                         "statistic": [nan, 1.0, 1.0, 3.0]})
    with caplog.at_level("WARNING", logger="bl_reservoir.scale.index"):
        assert index.index_result("job1", "obs_nan", "dedoppler/search", "/b/obs_nan/dedoppler/search",
                                  {**HEADER, "fch1": nan}, hits) == 2
        absurd = {**HEADER, "fch1": 1e308, "foff": 1e308, "nchans": 10**400, "tstart": -inf, "source_name": "S" * 5000}
        assert index.index_result(None, "obs_absurd", "dedoppler/search", "/b/obs_absurd/dedoppler/search",
                                  absurd, hits) == 2
        assert index.index_result(None, "obs_nofreqs", "dedoppler/search", "/b/obs_nofreqs/dedoppler/search",
                                  HEADER, hits.drop(columns="freqs")) == 0
    found = index.query_hits(observation="obs_nan")
    assert [(h["frequency_mhz"], h["drift_rate"], h["snr"], h["statistic"], h["row"]) for h in found] == [
        (1420.1, None, None, None, 0), (1420.4, None, None, 3.0, 3)]
    nan_obs, absurd_obs = index.get_observation("obs_nan"), index.get_observation("obs_absurd")
    assert (nan_obs["fmin_mhz"], nan_obs["fmax_mhz"], nan_obs["band"], nan_obs["mjd"]) == (None, None, None, 58402.78)
    assert nan_obs["n_hits"] == 2 and nan_obs["results"][0]["job"] == "job1"
    assert (absurd_obs["fmin_mhz"], absurd_obs["mjd"], absurd_obs["source"]) == (None, None, "S" * 200)
    assert index.get_observation("obs_nofreqs")["n_hits"] == 0
    warned = [r.getMessage() for r in caplog.records]
    assert "/b/obs_nan/dedoppler/search: 2 of 4 hits not indexed (no finite freqs)" in warned
    assert "/b/obs_nofreqs/dedoppler/search: 4 of 4 hits not indexed (no finite freqs)" in warned
    assert any(m.startswith("/b/obs_nan/dedoppler/search: band not indexed (fch1 nan") for m in warned)
