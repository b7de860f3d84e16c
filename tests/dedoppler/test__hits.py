"""One hit per signal: the strongest channel within the drift window."""

from __future__ import annotations

import numpy as np

from bl_reservoir.dedoppler import hit_search


def test_keeps_the_strongest_within_the_window_only():
    snr = np.zeros(1000, dtype=np.float32)
    snr[100:110] = np.linspace(11, 20, 10)  # one signal smeared over channels: peak at 109
    snr[300] = 15.0  # another signal far away
    snr[315] = 12.0  # within the window of 300: suppressed
    snr[500] = 9.9  # below threshold
    assert hit_search(snr, 10.0, 20).tolist() == [109, 300]


def test_equal_neighbours_give_one_hit():
    snr = np.zeros(100, dtype=np.float32)
    snr[[40, 45]] = 30.0
    assert hit_search(snr, 10.0, 10).tolist() == [40]


def test_nothing_above_threshold_gives_no_hit():
    assert hit_search(np.full(50, 3.0, dtype=np.float32), 10.0, 5).size == 0
