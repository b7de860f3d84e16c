"""Desmeared sums: the boxcar kernel and exact sums against brute force, and the recall they buy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bl_reservoir.dedoppler import SearchParameters, search_observation
from bl_reservoir.dedoppler._desmear import boxcar_rows, norm_table
from bl_reservoir.dedoppler._noise import noise_stats
from bl_reservoir.dedoppler._refine import drift_offsets, refine
from bl_reservoir.io import open_observation
from bl_reservoir.synth import Signal

PAD = 7.0


@pytest.mark.parametrize("mirrored", [0, 1])
@pytest.mark.parametrize("width_sum", [1, 2, 5, 40])
def test_boxcar_rows_sum_each_run_of_channels(mirrored, width_sum):
    raw = np.random.default_rng(width_sum).normal(size=(5, 37)).astype(np.float32)
    padded = np.full((8, 60), -1.0, dtype=np.float32)
    padded[5:] = 0.0
    boxcar_rows(raw, padded, width_sum, PAD, mirrored)
    rows = raw[:, ::-1] if mirrored else raw
    extended = np.concatenate([rows, np.full((5, width_sum + 60), PAD)], axis=1).astype(np.float64)
    expected = np.stack([extended[:, c:c + width_sum].sum(axis=1) for c in range(60)], axis=1)
    np.testing.assert_allclose(padded[:5], expected, rtol=1e-5, atol=1e-4)
    assert (padded[5:] == 0).all()  # rows past n_time stay zero


def test_desmeared_exact_sums_are_the_better_of_one_channel_and_the_channels_crossed_in_each_row():
    n_rows, step, max_bins = 16, 15, 60
    data = np.random.default_rng(1).normal(10.0, 1.0, (16, 300)).astype(np.float32)
    offsets = drift_offsets(n_rows, max_bins)
    norm = np.array([[0.0, 1.0], [0.0, 1.0], [3.0, 0.5], [50.0, 0.25], [2.0, 0.2], [0.0, 0.1]])
    sides = set()
    for column, drift in ((150, 7), (150, 20), (120, -33), (160, 45), (290, 50), (4, -50)):
        best = np.full(300, -np.inf, dtype=np.float32)
        bins = np.zeros(300, dtype=np.int32)
        refine(data, PAD, offsets, np.array([column]), np.array([drift]), 0, 0, 0, max_bins, best, bins, 1, step, norm)
        width = abs(drift) // step + 1
        sums = {}
        for w in (1, width):
            sums[w] = 0.0
            for i in range(16):
                base = column + np.sign(drift) * offsets[abs(drift), i]
                cols = range(base, base + w) if drift > 0 else range(base - w + 1, base + 1)
                sums[w] += sum(float(data[i, c]) if 0 <= c < 300 else PAD for c in cols)
        expected = sums[1] if width == 1 else max(sums[1], norm[width, 0] + norm[width, 1] * sums[width])
        assert best[column] == pytest.approx(expected, rel=1e-6) and bins[column] == drift
        sides.add("one channel" if expected == sums[1] else "desmeared")
    assert sides == {"one channel", "desmeared"}  # both sides of the max are exercised


def test_each_width_is_put_on_the_one_channel_scale_by_its_own_noise():
    integrated = np.random.default_rng(2).normal(1000.0, 10.0, 1 << 14).astype(np.float32)
    median, std = noise_stats(integrated)
    table = norm_table(integrated, median, std, 4)
    for w in (2, 3, 4):
        summed = np.convolve(integrated.astype(np.float64), np.ones(w), "valid").astype(np.float32)
        med_w, std_w = noise_stats(summed)
        for value in (med_w, med_w + 10 * std_w):  # same SNR on both scales
            scaled = table[w, 0] + table[w, 1] * value
            assert (scaled - median) / std == pytest.approx((value - med_w) / std_w, rel=1e-9, abs=1e-9)


SMEARED = [(0.3, 2), (-0.5, 4), (1.0, 7), (-2.0, 14), (3.0, 20), (-4.0, 27)]  # Hz/s, channels crossed per spectrum


def test_smeared_signals_are_found_with_desmearing_and_lost_without(small_obs):
    signals = {0: [Signal(1500 + 2200 * n, drift, 40.0, 4.0, doppler_smearing=True) for n, (drift, _) in
                   enumerate(SMEARED)]}
    path, truth = small_obs("smeared.h5", n_coarse=1, width=16384, signals=signals, seed=6)
    found = {}
    for desmear in (False, True):
        with open_observation(path) as obs:
            found[desmear], _, _ = search_observation(obs, SearchParameters(desmear=desmear))
    for row, (drift, crossed) in zip(truth.itertuples(), SMEARED):
        plain = found[False][(found[False]["index"] - row.index).abs() <= 4]
        near = found[True][(found[True]["index"] - row.index).abs() <= crossed / 2 + 3]
        assert len(near) == 1, (drift, found[True])
        # the drift within the signal's own band of drifts (its smear), as the sensitivity harness matches it
        assert abs(near["drift_rate"].iloc[0] - drift) <= (2 + crossed) * 0.0102
        gain = 1.1 if crossed < 7 else 1.5  # the SNR grows about as sqrt(channels crossed)
        if len(plain):
            assert near["snr"].iloc[0] > plain["snr"].max() * gain
    assert len(found[False]) <= 4  # without: the fast drifters are lost


def test_desmearing_leaves_drifts_under_one_channel_per_spectrum_as_they_were(small_obs):
    signals = {0: [Signal(2000, 0.1, 30.0, 4.0), Signal(6000, -0.12, 25.0, 3.0), Signal(11000, 0.0, 40.0, 10.0)]}
    path, _ = small_obs("slow.h5", n_coarse=1, width=16384, signals=signals, seed=7)
    found = {}
    for desmear in (False, True):
        with open_observation(path) as obs:
            found[desmear], _, _ = search_observation(obs, SearchParameters(desmear=desmear, exhaustive=True))
    assert found[True]["index"].tolist() == found[False]["index"].tolist() == [2000, 6000, 11000]
    assert found[True]["drift_bins"].tolist() == found[False]["drift_bins"].tolist()
    np.testing.assert_allclose(found[True]["snr"], found[False]["snr"], rtol=1e-6)


def test_unsmeared_signals_drifting_fast_keep_their_hits_with_desmearing(small_obs):
    # a path's value is the better of its one-channel and its desmeared sum: a narrow unsmeared signal keeps its
    # hit exactly (summing only the boxcar put wide ones 5-9 channels and 3-7 bins off); a 20 Hz wide one (7
    # channels) gains from the boxcar and stays within its own width, as the sensitivity harness matches it
    signals = {0: [Signal(2000, -3.0, 35.0, 20.0), Signal(5500, 2.0, 30.0, 2.0), Signal(9000, 4.0, 40.0, 3.0),
                   Signal(12500, -1.0, 25.0, 4.0)]}
    path, _ = small_obs("unsmeared.h5", n_coarse=1, width=16384, signals=signals, seed=8)
    found = {}
    for desmear in (False, True):
        with open_observation(path) as obs:
            found[desmear], _, _ = search_observation(obs, SearchParameters(desmear=desmear))
    plain, desmeared = found[False], found[True]
    assert plain["index"].tolist() == [2000, 5500, 9000, 12500] and len(desmeared) == 4
    same = ["index", "drift_rate", "snr", "drift_bins"]  # n_candidates differs: the wide signal's boxcar neighbours
    pd.testing.assert_frame_equal(desmeared.iloc[1:][same].reset_index(drop=True),
                                  plain.iloc[1:][same].reset_index(drop=True))
    fwhm_channels = 20.0 / 2.79
    assert abs(desmeared["index"].iloc[0] - 2000) <= 2 + fwhm_channels / 2
    assert abs(desmeared["drift_bins"].iloc[0] - plain["drift_bins"].iloc[0]) <= 2 + fwhm_channels
    assert desmeared["snr"].iloc[0] > plain["snr"].iloc[0]
