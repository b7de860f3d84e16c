"""Synthetic observations: the truth table says where the signals are, and seeds reproduce files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bl_reservoir.io import open_observation
from bl_reservoir.synth import TRUTH_COLUMNS, Signal, drift_span, make_observation, truth_path


def test_truth_table_matches_the_data(small_obs):
    path, truth = small_obs("t.h5", n_coarse=2, n_signals=4, snr_range=(80, 100), drift_range=(-1, 1))
    assert list(truth.columns) == TRUTH_COLUMNS and len(truth) == 4
    pd.testing.assert_frame_equal(pd.read_csv(truth_path(path)), truth, check_exact=False)
    with open_observation(path) as obs:
        for row in truth.itertuples():
            first = obs.read_channels(0, obs.n_chans)[0]
            lo = max(row.index - 3, 0)
            # the first spectrum peaks at the truth's fine channel
            assert abs(lo + int(np.argmax(first[lo:row.index + 4])) - row.index) <= 2
            assert row.freq_start == pytest.approx(obs.frequencies(row.index, row.index + 1)[0], abs=1e-9)
            start, stop = obs.coarse_channel_bounds(row.coarse_channel)
            assert start <= row.index < stop


def test_drift_direction_follows_foff(small_obs):
    # foff < 0: a positive drift (Hz/s) moves to lower channel index.
    sig = Signal(index=2000, drift_rate=1.0, snr=200.0, width=3.0)
    path, _ = small_obs("d.fil", n_coarse=1, signals={0: [sig]})
    with open_observation(path) as obs:
        block = obs.coarse_channel(0)
    end = 2000 + drift_span(1.0)
    assert drift_span(1.0) < 0
    assert abs(int(np.argmax(block[-1])) - end) <= 2


def test_seed_reproduces_and_noise_only(tmp_path):
    a, ta = make_observation(tmp_path / "a.h5", coarse_channel_width=4096, n_signals=2, seed=5)
    b, tb = make_observation(tmp_path / "b.h5", coarse_channel_width=4096, n_signals=2, seed=5)
    with open_observation(a) as oa, open_observation(b) as ob:
        np.testing.assert_array_equal(oa.coarse_channel(0), ob.coarse_channel(0))
    pd.testing.assert_frame_equal(ta, tb)
    _, noise = make_observation(tmp_path / "n.fil", coarse_channel_width=4096, noise_only=True, seed=5)
    assert noise.empty and list(noise.columns) == TRUTH_COLUMNS


def test_bl_defaults_and_float32(tmp_path):
    path, _ = make_observation(tmp_path / "bl.fil", coarse_channel_width=4096, n_signals=1, seed=2)
    with open_observation(path) as obs:
        assert obs.n_time == 16
        assert obs.header["tsamp"] == 18.253611008
        assert obs.header["foff"] * 1e6 == pytest.approx(-2.7939677238464355)
        assert obs.header["nbits"] == 32 and obs.coarse_channel(0).dtype == np.float32
        assert obs.header["nfpc"] == 4096


def test_too_narrow_channel_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="too narrow"):
        make_observation(tmp_path / "x.h5", coarse_channel_width=256, n_signals=1, seed=1)
