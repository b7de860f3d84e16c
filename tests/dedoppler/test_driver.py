"""The search on synthetic files with known signals: every strong signal found, once; noise gives nothing."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

from bl_reservoir.dedoppler import (
    DriftGrid,
    SearchParameters,
    driver,
    search_observation,
)
from bl_reservoir.errors import InvalidObservation, UsageError
from bl_reservoir.io import open_observation, write_h5
from bl_reservoir.synth import Signal, bl_header, make_observation, synthesize_coarse_channel

RESOLUTION = 0.010204255741040042  # Hz/s per drift bin of a BL fine file (16 x 18.25 s, 2.79 Hz)


def _search(path, **kw):
    with open_observation(path) as obs:
        return search_observation(obs, SearchParameters(**kw))


def _assert_found_once(hits: pd.DataFrame, truth: pd.DataFrame, max_drift: float = 4.0) -> None:
    strong = truth[(truth.snr >= 20) & (truth.drift_rate.abs() <= max_drift)]
    for row in strong.itertuples():
        near = hits[(hits["index"] - row.index).abs() <= 4]
        assert len(near) == 1, f"signal at {row.index} ({row.drift_rate:+.3f} Hz/s): {len(near)} hits"
        assert abs(near["drift_rate"].iloc[0] - row.drift_rate) <= 2 * RESOLUTION + 1e-9
        assert near["snr"].iloc[0] >= 10
    assert len(hits) == len(strong)  # one hit per signal, nothing else


def test_signals_at_the_drift_edges_and_both_signs_are_found(small_obs):
    signals = {0: [Signal(600, 4.0, 25.0, 3.0), Signal(3000, -4.0, 25.0, 6.0), Signal(5200, 1.3, 20.0, 4.0),
                   Signal(7000, -0.7, 30.0, 2.0)],
               1: [Signal(1500, 0.0, 20.0, 5.0), Signal(5000, -2.55, 40.0, 10.0), Signal(7500, 3.99, 22.0, 4.0)]}
    path, truth = small_obs("edges.h5", n_coarse=2, width=8192, signals=signals)
    hits, stamps, grid = _search(path)
    _assert_found_once(hits, truth)
    assert grid.max_bins * abs(grid.resolution) >= 4.0  # +-max searched, no gap at the edge
    assert set(hits.coarse_channel) == {0, 1}
    assert stamps.shape == (len(hits), 16, 2 * (grid.excursion() + 8) + 1)
    with open_observation(path) as obs:
        assert np.allclose(hits["freqs"], obs.frequencies()[hits["index"].to_numpy()])


def test_random_strong_signals_are_all_found(small_obs):
    path, truth = small_obs("random.h5", n_coarse=2, width=16384, n_signals=10, snr_range=(20, 50),
                            drift_range=(-4, 4), seed=11)
    hits, _, _ = _search(path)
    _assert_found_once(hits, truth)


def test_wide_signals_get_the_drift_at_the_centre_of_their_plateau(small_obs):
    # 15-20 Hz wide (5-7 channels): neighbouring drifts sum almost alike, so the strongest path
    # alone misses by more than 2 bins about one time in ten (measured 8 of 90); the centroid does not
    drifts = [-3.1, -2.49, -1.64, -0.667, 0.022, 0.53, 1.06, 2.13, 2.55, 3.2]
    signals = {cc: [Signal(400 + 780 * n, drift, 25.0, 15.0 + (n % 3) * 2.5) for n, drift in enumerate(drifts)]
               for cc in (0, 1)}
    signals[1] = [Signal(s.index, -s.drift_rate, 22.0, s.width) for s in signals[1]]
    path, truth = small_obs("wide.h5", n_coarse=2, width=8192, signals=signals, seed=14)
    hits, _, _ = _search(path)
    _assert_found_once(hits, truth)


def test_noise_alone_gives_no_hit(small_obs):
    path, _ = small_obs("noise.h5", n_coarse=2, width=16384, noise_only=True, seed=12)
    hits, stamps, _ = _search(path, snr=10)
    assert len(hits) == 0 and stamps.shape[0] == 0


def test_coarse_to_fine_reports_what_the_exhaustive_search_reports(small_obs):
    path, _ = small_obs("same.h5", n_coarse=2, width=8192, n_signals=8, snr_range=(12, 40), seed=13)
    fast, _, _ = _search(path)
    full, _, _ = _search(path, exhaustive=True, threads=2)
    assert fast["index"].tolist() == full["index"].tolist()
    assert fast["drift_bins"].tolist() == full["drift_bins"].tolist()
    np.testing.assert_allclose(fast["snr"], full["snr"], rtol=1e-4)


def test_kernels_are_loaded_once_per_kind_of_search_and_the_gc_is_left_on(small_obs):
    path, truth = small_obs("warm.h5", n_coarse=1, width=8192, n_signals=2, snr_range=(30, 40), seed=15)
    driver.warm_up.cache_clear()
    first, _, _ = _search(path, threads=1)
    again, _, _ = _search(path, threads=1)
    _search(path, threads=1, exhaustive=True)
    info = driver.warm_up.cache_info()
    assert (info.misses, info.hits) == (2, 1)  # the warm-up search runs once per kind, not per file
    assert gc.isenabled()
    pd.testing.assert_frame_equal(first, again)
    _assert_found_once(first, truth)  # the warm-up's own signal is never reported


def test_min_and_max_drift_are_honoured(small_obs):
    signals = {0: [Signal(1000, 0.0, 40.0, 4.0), Signal(3000, 1.0, 40.0, 4.0), Signal(6000, -2.0, 40.0, 4.0)]}
    path, _ = small_obs("minmax.h5", n_coarse=1, width=8192, signals=signals)
    hits, _, _ = _search(path, min_drift=0.5, max_drift=1.5)
    assert len(hits) == 1 and abs(hits["index"].iloc[0] - 3000) <= 4
    assert (hits["drift_rate"].abs() >= 0.5).all()


def test_a_wide_signal_just_below_min_drift_is_reported_above_it(small_obs):
    # 20 Hz wide at drift 0: drifts of +-3..6 bins all sum much of it, on both sides of the
    # excluded band; the reported drift must stay on one side, not average across the gap
    signals = {0: [Signal(4000, 0.0, 60.0, 20.0)]}
    path, _ = small_obs("gap.h5", n_coarse=1, width=8192, signals=signals)
    hits, _, grid = _search(path, min_drift=0.03)
    assert len(hits) == 1 and abs(hits["index"].iloc[0] - 4000) <= 4
    assert abs(hits["drift_bins"].iloc[0]) >= grid.min_bins == 3


def test_time_axis_is_padded_to_a_power_of_two(small_obs):
    signals = {0: [Signal(2000, 0.8, 40.0, 4.0), Signal(5000, -1.5, 40.0, 4.0)]}
    path, truth = small_obs("twelve.h5", n_coarse=1, width=8192, n_time=12, signals=signals)
    hits, stamps, grid = _search(path)
    assert grid.n_rows == 16 and stamps.shape[1] == 12
    res = abs(grid.resolution)
    for row in truth.itertuples():
        near = hits[(hits["index"] - row.index).abs() <= 4]
        assert len(near) == 1 and abs(near["drift_rate"].iloc[0] - row.drift_rate) <= 2 * res * 15 / 11


def test_a_single_spectrum_is_refused_with_the_reason(small_obs):
    path, _ = small_obs("one.h5", n_coarse=1, width=8192, n_time=1, signals={0: [Signal(2000, 0.0, 40.0, 4.0)]})
    with pytest.raises(InvalidObservation, match="1 spectrum: a drift search needs at least 2") as caught:
        _search(path)
    assert str(path) in str(caught.value)


def test_drift_grid_searches_past_max_drift_and_reports_up_to_it():
    header = {"foff": -2.7939677238464355e-6, "tsamp": 18.253611008}
    grid = DriftGrid.for_header(header, 16, SearchParameters(max_drift=4.0, min_drift=1.0))
    assert grid.resolution == pytest.approx(-RESOLUTION)
    assert (grid.max_bins - 1) * RESOLUTION < 4.0 <= grid.max_bins * RESOLUTION  # a signal at 4 loses nothing
    assert grid.last_bins * RESOLUTION <= 4.0 < (grid.last_bins + 1) * RESOLUTION  # none is reported past it
    assert (grid.min_bins - 1) * RESOLUTION < 1.0 <= grid.min_bins * RESOLUTION


@pytest.fixture(scope="module")
def near_threshold(tmp_path_factory):
    """Two coarse channels of 2**17 with 60 signals each at SNR 4-14: many peaks near any threshold."""
    path, _ = make_observation(tmp_path_factory.mktemp("near") / "near.h5", n_coarse_channels=2,
                               coarse_channel_width=1 << 17, n_signals=120, snr_range=(4, 14),
                               drift_range=(-3.9, 3.9), width_range=(2, 20), seed=20)
    return path


@pytest.mark.parametrize("snr", [5, 6, 8, 10])
def test_the_default_search_reports_what_the_exhaustive_one_reports_at_any_threshold(near_threshold, snr):
    # coarse-to-fine missed or moved 40-160 of ~300 hits here at --snr 5 and 6: below 10 the search is exhaustive
    fast, _, _ = _search(near_threshold, snr=snr, threads=1)
    full, _, _ = _search(near_threshold, snr=snr, exhaustive=True, threads=1)
    assert len(fast) > 70
    assert fast["index"].tolist() == full["index"].tolist()
    assert fast["drift_bins"].tolist() == full["drift_bins"].tolist()
    np.testing.assert_allclose(fast["snr"], full["snr"], rtol=1e-5)


@pytest.mark.parametrize("max_drift", [0.5, 1.0, 2.25, 3.7, 4.0])
def test_no_drift_is_reported_beyond_max_drift(small_obs, max_drift):
    # signals drifting at exactly +-max_drift, narrow and wide (a wide one's plateau reaches past the edge)
    signals = {0: [Signal(1500, max_drift, 40.0, 3.0), Signal(4000, -max_drift, 40.0, 3.0),
                   Signal(6500, max_drift, 40.0, 18.0)]}
    path, truth = small_obs("edge.h5", n_coarse=1, width=8192, signals=signals, seed=int(max_drift * 100))
    hits, _, grid = _search(path, max_drift=max_drift)
    assert (hits["drift_rate"].abs() <= max_drift).all(), hits["drift_rate"].tolist()
    assert (hits["drift_bins"].abs() <= grid.last_bins).all()
    _assert_found_once(hits, truth, max_drift)


def test_a_drift_range_holding_no_bin_is_refused_naming_the_file(small_obs):
    path, _ = small_obs("range.h5", n_coarse=1, width=4096, noise_only=True)
    with pytest.raises(UsageError, match="no drift of its grid lies in --min-drift 1.0 .. --max-drift 1.0") as caught:
        _search(path, min_drift=1.0, max_drift=1.0)  # bins 97 (0.9898) and 98 (1.0000170) Hz/s
    assert str(path) in str(caught.value)


def test_a_drift_range_wider_than_a_coarse_channel_is_refused_before_anything_is_allocated(small_obs):
    # --max-drift 1e6 on 2.79 Hz channels: 98 million drift bins, gigabytes of tree buffers and path offsets
    path, _ = small_obs("huge.h5", n_coarse=1, width=4096, noise_only=True)
    with pytest.raises(UsageError, match=r"--max-drift 1000000.0 Hz/s carries a signal 97998328 channels over the "
                                         r"observation, more than a coarse channel \(4096\)") as caught:
        _search(path, max_drift=1e6)
    assert str(path) in str(caught.value)
    hits, _, _ = _search(path, max_drift=40.0)  # 3920 channels: still searched
    assert len(hits) == 0


def _across_boundary(tmp_path, start: int, drift: float, snr: float, width_hz: float = 4.0):
    """Two coarse channels of 8192 holding one signal drawn over the whole band, so it can cross between them."""
    header = bl_header(2 * 8192, coarse_channel_width=8192)
    data = synthesize_coarse_channel(header, 0, 2 * 8192, 16, [Signal(start, drift, snr, width_hz)], seed=5)
    path = tmp_path / f"across_{start}.h5"
    write_h5(path, header, data)
    return path


# across the coarse channels' boundary (8192) both ways, and across the seam where coarse channel 0's first part
# (channels up to 8192 - 784) meets the part searched once coarse channel 1 is read
@pytest.mark.parametrize(("start", "drift"), [(8192 - 120, -3.0), (8192 + 120, 3.0), (8192 - 5, -0.5),
                                              (7408 - 100, -3.0), (7408 + 60, 3.0)])
def test_a_signal_across_a_coarse_channel_boundary_is_found_once_with_its_full_snr(tmp_path, start, drift):
    # file channels rise as frequency falls (foff < 0): a negative drift moves up in channel index
    path = _across_boundary(tmp_path, start, drift, 40.0)
    hits, _, _ = _search(path)
    with open_observation(path, coarse_channel_width=2 * 8192) as obs:  # the same data as one coarse channel
        whole, _, _ = search_observation(obs, SearchParameters())
    assert len(hits) == len(whole) == 1
    assert abs(hits["index"].iloc[0] - start) <= 2
    assert hits["coarse_channel"].iloc[0] == start // 8192
    assert hits["drift_bins"].iloc[0] == whole["drift_bins"].iloc[0]
    # the whole path is summed: the SNR of the one-coarse-channel search, up to the two noise estimates
    assert hits["snr"].iloc[0] == pytest.approx(whole["snr"].iloc[0], rel=0.03)


def test_noise_is_estimated_before_the_dc_spike_is_repaired():
    # turboSETI's comp_stats runs on the spectrum as read; the DC repair comes after it
    rng = np.random.default_rng(4)
    block = rng.normal(100.0, 5.0, (16, 1024)).astype(np.float32)
    block[:, 512] += 1000.0  # the DC spike
    block[np.arange(16), 200 + np.arange(16)] += 40.0
    integrated = block.sum(axis=0)
    low, median, high = np.percentile(integrated, [5, 50, 95])
    std = integrated[(integrated >= low) & (integrated <= high)].astype(np.float64).std()
    params = SearchParameters(max_drift=0.2, snr=10.0)
    header = {"fch1": 1500.0, "foff": -2.7939677238464355e-6, "tsamp": 18.253611008}
    hits, _ = driver.search_block(block.copy(), header, DriftGrid.for_header(header, 16, params), params, 0, 0)
    path_sum = block[np.arange(16), 200 + np.arange(16)].astype(np.float64).sum()
    assert hits["channel_in_coarse"].tolist() == [200]
    assert hits["snr"].iloc[0] == pytest.approx((path_sum - median) / std, rel=1e-5)
