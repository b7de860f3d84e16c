import pandas as pd
import pytest

from bl_reservoir.sensitivity.matching import (
    Geometry,
    Tolerances,
    band,
    channel_tolerance,
    drift_tolerance,
    match,
    match_matrix,
)
from bl_reservoir.synth import FOFF_HZ, TSAMP

#: 1 s spectra of 1 Hz channels, foff negative as in BL files: drift d Hz/s moves -d channels per spectrum.
GEO = Geometry(n_time=16, tsamp=1.0, foff_hz=-1.0)
BIN = 1 / 15  # Hz/s: one channel over the 15 steps between first and last spectrum


def _truth():
    return pd.DataFrame({
        "index": [100, 500, 900],
        "drift_rate": [0.0, 1.0, -2.0],
        "width": [2.0, 2.0, 4.0],            # Hz: half-FWHM 1, 1, 2 channels
        "doppler_smearing": [False, True, False],
        "snr": [10.0, 20.0, 30.0],
    })


def test_geometry_in_bl_units():
    geo = Geometry(16, TSAMP, FOFF_HZ)
    assert geo.step(1.0) == pytest.approx(-18.253611008 / 2.7939677238464355)
    assert geo.drift_bin == pytest.approx(2.7939677238464355 / (15 * TSAMP))
    assert GEO.drift_bin == pytest.approx(BIN)


def test_tolerances_grow_with_the_band_a_signal_covers():
    truth = _truth()  # bands: FWHM 2, 2 + 1 (smeared, 1 channel per spectrum), 4 channels
    assert list(band(truth, GEO)) == [2.0, 3.0, 4.0]
    assert list(channel_tolerance(truth, GEO, Tolerances(channels=2))) == [3.0, 3.5, 4.0]
    assert list(drift_tolerance(truth, GEO, Tolerances(drift_bins=2)) / BIN) == pytest.approx([4.0, 5.0, 6.0])


def test_smeared_signal_accepts_any_path_inside_its_band():
    # B: 2 + 3 drift bins of tolerance
    hits = pd.DataFrame({"index": [500, 500], "drift_rate": [1.0 + 4.9 * BIN, 1.0 - 5.1 * BIN]})
    _, out = match(_truth(), hits, GEO, Tolerances(channels=2, drift_bins=2))
    assert list(out["signal"]) == [1, -1]


def test_path_rule_on_hand_made_hits():
    hits = pd.DataFrame({
        "index": [103, 104, 496, 900, 900, 5000],
        "drift_rate": [0.0, 0.0, 1.0, -2.0 + 6 * BIN, -2.0 + 6.5 * BIN, 0.0],
    })
    truth, out = match(_truth(), hits, GEO, Tolerances(channels=2, drift_bins=2))
    # 103 is 3 channels from 100 (tolerance 3); 104 is 4. The smeared signal's t = 0 centre is 499.5,
    # 496 is 3.5 from it (tolerance 3.5). C's drift tolerance is 2 + 4 bins: 6 matches, 6.5 does not.
    assert list(out["signal"]) == [0, -1, 1, 2, -1, -1]
    assert list(truth["found"]) == [True, True, True]
    assert list(truth["n_matches"]) == [1, 1, 1]


def test_path_rule_drift_sign_matters():
    hits = pd.DataFrame({"index": [900], "drift_rate": [2.0]})
    truth, out = match(_truth(), hits, GEO)
    assert list(out["signal"]) == [-1] and not truth["found"].any()


def test_window_rule_on_hand_made_hits():
    # Extents with tolerance: A [97, 103]; B (smeared, 16 steps of -1) [480.5, 503.5]; C (15 steps of +2) [896, 934].
    hits = pd.DataFrame({"index": [-150, -160, 503, 935, 679]})
    truth, out = match(_truth(), hits, GEO, Tolerances(channels=2), window=256)
    assert list(out["signal"]) == [0, -1, 1, -1, 2]
    assert list(truth["found"]) == [True, True, True]


def test_window_rule_ignores_a_drift_column():
    hits = pd.DataFrame({"index": [-150], "drift_rate": [3.0]})
    _, out = match(_truth(), hits, GEO, window=256)
    assert list(out["signal"]) == [0]


def test_hits_without_drift_or_window_match_by_position():
    hits = pd.DataFrame({"index": [105, 106]})
    _, out = match(_truth(), hits, GEO, Tolerances(channels=2))
    assert list(out["signal"]) == [0, -1]


def test_no_hits_finds_nothing():
    truth, out = match(_truth(), pd.DataFrame({"index": [], "drift_rate": []}), GEO)
    assert not truth["found"].any() and len(out) == 0
    assert match_matrix(_truth(), pd.DataFrame({"index": []}), GEO).shape == (3, 0)


def test_tolerances_report_their_units():
    d = Tolerances(channels=3, drift_bins=1.5).to_dict(GEO)
    assert d["channels"] == 3 and d["drift_bins"] == 1.5
    assert d["drift_tolerance_hz_s"] == pytest.approx(1.5 * BIN)


def test_position_only_ignores_the_reported_drift():
    # C's path runs from 900 to 930 (widened by 4): a hit starting at 925 with a wrong drift is on it
    hits = pd.DataFrame({"index": [925.0, 5000.0], "drift_rate": [5.0, -2.0]})
    truth, out = match(_truth(), hits, GEO)
    assert list(truth["found"]) == [False, False, False]
    assert list(truth["found_position"]) == [False, False, True]
    assert list(out["signal"]) == [-1, -1]
