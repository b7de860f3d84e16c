"""A path that only crosses a stronger signal's track is no hit; real signals close together all are."""

from __future__ import annotations

import numpy as np
import pytest

from bl_reservoir.dedoppler import SearchParameters, search_observation
from bl_reservoir.io import open_observation
from bl_reservoir.synth import Signal


def _hits(small_obs, signals, seed, **kw):
    path, _ = small_obs("crossing.h5", n_coarse=1, width=16384, signals={0: signals}, seed=seed)
    with open_observation(path) as obs:
        hits, _, _ = search_observation(obs, SearchParameters(**kw))
    return hits


@pytest.mark.parametrize("exhaustive", [False, True])
@pytest.mark.parametrize(("drift", "width_hz", "seed"), [(2.0, 3.0, 1), (-3.5, 2.0, 2), (1.2, 18.0, 3)])
def test_a_path_crossing_a_strong_track_is_not_a_second_hit(small_obs, exhaustive, drift, width_hz, seed):
    # before: an SNR ~23 "hit" 300-700 channels away (outside the one-excursion window) whose path
    # crossed the SNR ~260 track in one or two spectra
    hits = _hits(small_obs, [Signal(8000, drift, 250.0, width_hz)], seed, exhaustive=exhaustive)
    assert hits["index"].tolist() == [8000]
    assert hits["snr"].iloc[0] > 200


def test_two_real_signals_whose_tracks_cross_are_both_hits(small_obs):
    # file channels fall as the frequency rises (foff < 0): +2 Hz/s moves 8000 -> 7804, -3.5 Hz/s 7550 -> 7893,
    # so they cross in spectrum 12 or 13; 450 channels apart, they are in no one excursion window (392)
    hits = _hits(small_obs, [Signal(8000, 2.0, 250.0, 3.0), Signal(7550, -3.5, 30.0, 3.0)], 4)
    assert hits["index"].tolist() == [7550, 8000]
    assert hits["snr"].iloc[0] == pytest.approx(30 * 1.27, rel=0.15)  # its own SNR, not the crossing's


def test_two_close_parallel_signals_are_both_hits(small_obs):
    # 550 channels apart: outside one excursion window (392), inside turboSETI's two (784), which merges them
    hits = _hits(small_obs, [Signal(8000, 1.0, 250.0, 3.0), Signal(8550, 1.0, 12.0, 3.0)], 5)
    assert hits["index"].tolist() == [8000, 8550]


def test_below_coarse_to_fine_thresholds_crossings_are_dropped_too(small_obs):
    hits = _hits(small_obs, [Signal(8000, 2.0, 250.0, 3.0)], 1, snr=8.0)
    near = hits[(hits["index"] - 8000).abs() <= 2 * 392]
    assert near["index"].tolist() == [8000]
    assert np.isfinite(hits["snr"]).all()
