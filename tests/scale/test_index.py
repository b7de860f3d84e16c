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
