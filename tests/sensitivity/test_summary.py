import pandas as pd
import pytest

from bl_reservoir.sensitivity.summary import false_hit_rate, recall_by, recall_plane, snr_at_recall, summarise


def _truth():
    # 2 drift bins x 3 SNR bins x 2 signals; found pattern chosen by hand
    rows = []
    found = {(0.0, 10.0): [False, False], (0.0, 20.0): [True, False], (0.0, 30.0): [True, True],
             (4.0, 10.0): [False, False], (4.0, 20.0): [False, False], (4.0, 30.0): [True, False]}
    for (drift, snr), flags in found.items():
        for i, f in enumerate(flags):
            rows.append({"snr": snr, "snr_bin": snr, "drift_rate": drift, "drift_bin": drift, "width": 4.0,
                         "width_bin": 4.0, "doppler_smearing": bool(i), "found": f})
    return pd.DataFrame(rows)


def test_recall_by_snr_counts_and_fractions():
    assert recall_by(_truth(), "snr") == [
        {"snr": 10.0, "n": 4, "found": 0, "recall": 0.0},
        {"snr": 20.0, "n": 4, "found": 1, "recall": 0.25},
        {"snr": 30.0, "n": 4, "found": 3, "recall": 0.75},
    ]
    assert [r["recall"] for r in recall_by(_truth(), "drift_rate")] == [0.5, 1 / 6]


def test_recall_plane_rows_are_drift_columns_snr():
    plane = recall_plane(_truth())
    assert plane["drift_rate"] == [0.0, 4.0] and plane["snr"] == [10.0, 20.0, 30.0]
    assert plane["recall"] == [[0.0, 0.5, 1.0], [0.0, 0.0, 0.5]]


def test_snr_at_recall_interpolates_between_bins():
    curve = [{"snr": 10.0, "recall": 0.5}, {"snr": 20.0, "recall": 0.8}, {"snr": 30.0, "recall": 1.0}]
    assert snr_at_recall(curve, 0.9) == pytest.approx(25.0)
    assert snr_at_recall(curve, 0.5) == 10.0
    assert snr_at_recall(curve[:2], 0.9) is None


def test_false_hit_rate_has_a_poisson_upper_limit():
    zero = false_hit_rate(0, 2.0)
    assert zero["per_mhz"] == 0.0 and zero["per_mhz_upper_95"] == pytest.approx(2.995732 / 2.0, rel=1e-5)
    assert false_hit_rate(6, 3.0)["per_mhz"] == 2.0


def test_summarise_splits_smearing_and_counts_unmatched_hits():
    hits = pd.DataFrame({"index": [1, 2, 3, 4], "signal": [0, 5, -1, -1]})
    noise = pd.DataFrame({"index": [7]})
    out = summarise(_truth(), hits, noise, signal_bandwidth_mhz=2.0, noise_bandwidth_mhz=0.5)
    assert out["n_signals"] == 12 and out["n_found"] == 4 and out["recall"] == pytest.approx(4 / 12)
    assert out["snr_at_90"] is None
    assert out["doppler_smearing"]["off"]["recall_by_snr"][2] == {"snr": 30.0, "n": 2, "found": 2, "recall": 1.0}
    assert out["doppler_smearing"]["off"]["snr_at_90"] == pytest.approx(20 + 0.4 / 0.5 * 10)
    assert out["false_hits"]["count"] == 1 and out["false_hits"]["per_mhz"] == 2.0
    assert out["unmatched_hits_in_signal_files"]["per_mhz"] == 1.0
    assert out["hits_per_found_signal"] == 0.5


def test_position_only_curve_uses_found_position():
    truth = _truth().assign(found_position=True)
    out = summarise(truth, pd.DataFrame({"signal": []}), pd.DataFrame(), 1.0, 1.0)
    assert out["position_only"]["recall"] == 1.0 and out["position_only"]["snr_at_90"] == 10.0
    assert [r["recall"] for r in out["position_only"]["recall_by_snr"]] == [1.0, 1.0, 1.0]
