"""The hits table: filters (both strength bounds are alternatives), order, and the strongest hits per band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bl_reservoir.energy_detection.detect import BANDS_MHZ
from bl_reservoir.web.hits import HitFilter, ordered, strongest_per_band

#: Two results in one table: SNR rows (dedoppler-like) and statistic rows (energy-detection-like), as the
#: hits index holds them side by side.
MIXED = pd.DataFrame({"freqs": [1400.5, 1400.6, 1500.0, 1600.0],
                      "snr": [50.0, 5.0, np.nan, np.nan],
                      "statistic": [np.nan, np.nan, 9000.0, 100.0]})


def test_either_strength_bound_qualifies_a_hit():
    both = HitFilter(min_snr=10.0, min_statistic=2048.0).mask(MIXED)
    assert both.tolist() == [True, False, True, False]   # was all False: every hit lacks one of the two
    assert HitFilter(min_snr=10.0).mask(MIXED).tolist() == [True, False, False, False]
    assert HitFilter(min_statistic=2048.0).mask(MIXED).tolist() == [False, False, True, False]
    # a strength bound with the other filters: still inclusive ranges, all of them required
    assert HitFilter(fmin=1450.0, min_snr=10.0, min_statistic=2048.0).mask(MIXED).tolist() == \
        [False, False, True, False]


def test_a_bound_on_a_column_the_result_lacks_matches_nothing():
    snr_only = MIXED[["freqs", "snr"]]
    assert not HitFilter(min_statistic=0.0).mask(snr_only).any()
    assert HitFilter(min_statistic=0.0, min_snr=10.0).mask(snr_only).tolist() == [True, False, False, False]
    assert not HitFilter(drift_min=0.0).mask(MIXED).any()


def test_ordered_rows_and_the_query_of_a_filter():
    assert ordered(MIXED, HitFilter(), "freqs", descending=True).tolist() == [3, 2, 1, 0]
    assert ordered(MIXED, HitFilter(fmax=1500.0)).tolist() == [0, 1, 2]
    assert HitFilter(fmin=1.0, min_snr=2.0).query() == {"fmin": 1.0, "min_snr": 2.0}


def test_strongest_per_band_uses_energy_detections_bands():
    rng = np.random.default_rng(4)
    freqs = np.concatenate([rng.uniform(1000, 1400, 20), rng.uniform(1400.001, 1700, 20),
                            rng.uniform(1700.001, 2000, 20), [900.0, 950.0]])
    hits = pd.DataFrame({"freqs": freqs, "snr": rng.uniform(10, 100, len(freqs))})
    bands = strongest_per_band(hits, 3)
    assert [b for b, _ in bands] == ["1000-1400", "1400-1700", "1700-", "other"]
    for (band, rows), (lo, hi) in zip(bands, BANDS_MHZ):
        inside = hits[(hits["freqs"] >= lo) & (hits["freqs"] <= hi)]
        assert rows == inside["snr"].sort_values(ascending=False).index[:3].tolist(), band
    assert sorted(bands[-1][1]) == [60, 61]   # the two hits below 1000 MHz
    # energy detection ranks by its statistic; a band without hits is left out
    one_band = pd.DataFrame({"freqs": [1420.0, 1421.0], "statistic": [3000.0, 5000.0]})
    assert strongest_per_band(one_band, 6) == [("1400-1700", [1, 0])]
    assert strongest_per_band(one_band.iloc[:0], 6) == []
