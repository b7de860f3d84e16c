"""The driver on synthetic files: equal to the plain per-window scipy method, and hits on the signals."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from _servers import benchmark_module

from bl_reservoir.energy_detection.detect import Parameters, best_per_band, detect, detect_block
from bl_reservoir.errors import UsageError
from bl_reservoir.io import open_observation
from bl_reservoir.synth import Signal, drift_span


@functools.cache
def _reference():
    """benchmarks/_energy_reference.py, loaded on first use rather than at collection."""
    return benchmark_module("_energy_reference")


def plain_clean(data: np.ndarray) -> np.ndarray:
    """The original cleaning, written plainly (the benchmarks' anchor)."""
    return _reference().plain_clean(data)


def reference_hits(path, threshold: float = 2048.0, *, pvalue: float | None = None, window: int = 256,
                   coarse_channel_width: int | None = None) -> pd.DataFrame:
    """The original method, written plainly: scipy's normaltest on each window's samples.

    Defaults: the fine-resolution script; `pvalue=1e-25, coarse_channel_width=1024` is the mid-resolution one.
    """
    from scipy import stats

    half = window // 2
    rows = []
    with open_observation(path, coarse_channel_width) as obs:
        for cc in range(obs.n_coarse_channels):
            cleaned = plain_clean(obs.coarse_channel(cc))
            width = cleaned.shape[1]
            for i in range(0, width - half, half):
                statistic, p = stats.normaltest(cleaned[:, i:i + window].flatten())
                if (p < pvalue) if pvalue is not None else (statistic > threshold):
                    rows.append((cc * width + i, statistic, p, cc))
    return pd.DataFrame(rows, columns=["index", "statistic", "pvalue", "coarse_channel"])


def assert_same_hits(ours: pd.DataFrame, ref: pd.DataFrame, threshold: float) -> None:
    """Same hit windows (except within 0.1% of the threshold), statistics within 1e-4 relative."""
    merged = ours.merge(ref, on="index", how="outer", suffixes=("", "_ref"), indicator=True)
    only = merged[merged["_merge"] != "both"]
    near = np.fmax(only["statistic"].fillna(-np.inf), only["statistic_ref"].fillna(-np.inf))
    assert (np.abs(near - threshold) <= 1e-3 * threshold).all(), f"different hit windows:\n{only}"
    both = merged[merged["_merge"] == "both"]
    np.testing.assert_allclose(both["statistic"], both["statistic_ref"], rtol=1e-4)
    np.testing.assert_allclose(both["pvalue"], both["pvalue_ref"], rtol=1e-4, atol=1e-300)
    assert (both["coarse_channel"] == both["coarse_channel_ref"]).all()


@pytest.mark.parametrize("name, n_coarse, width", [
    ("one.h5", 1, 16384),
    ("two.fil", 2, 16384),
    ("three.h5", 3, 16384),
    ("wide.h5", 1, 65536),
])
@pytest.mark.parametrize("threshold", [2048.0, 150.0])
def test_equal_to_per_window_scipy(small_obs, name, n_coarse, width, threshold):
    path, truth = small_obs(name, n_coarse=n_coarse, width=width, n_signals=3 * n_coarse,
                            snr_range=(50.0, 200.0), drift_range=(-2.0, 2.0), seed=n_coarse)
    with open_observation(path) as obs:
        assert obs.coarse_channel_width == width
        hits, stamps = detect(obs, Parameters(threshold=threshold))
        freqs = obs.frequencies(0, obs.n_chans)
    ref = reference_hits(path, threshold)
    assert ref["coarse_channel"].nunique() == n_coarse  # strong signals: every coarse channel has hits
    assert_same_hits(hits, ref, threshold)
    assert list(hits.columns) == ["index", "statistic", "pvalue", "freqs", "coarse_channel"]
    np.testing.assert_allclose(hits["freqs"], freqs[hits["index"]], rtol=0, atol=1e-9)
    assert stamps.shape == (len(hits), 16, 256) and stamps.dtype == np.float32


def test_mid_resolution_equal_to_the_original_mid_script(small_obs):
    # energy_detection_mid.py, final revision: 1024-channel coarse channels, many integrations,
    # windows of 256 every 128 (an earlier revision used 32 every 16), hits at p < 1e-25; same code
    # here, other parameters
    signals = {0: [Signal(200, 0.0, 40.0, 4.0)], 2: [Signal(700, 0.0, 80.0, 8.0)]}
    path, _ = small_obs("mid.h5", n_coarse=3, width=1024, n_time=64, signals=signals)
    params = Parameters(pvalue=1e-25, window=256, stride=128, coarse_channel_width=1024)
    with open_observation(path, params.coarse_channel_width) as obs:
        hits, stamps = detect(obs, params)
    ref = reference_hits(path, pvalue=1e-25, window=256, coarse_channel_width=1024)
    # the two windows over each signal (channels 200 and 2048 + 700); on setigen's chi^2 noise, 16,384 samples
    # per window also flag a few noise windows just over K^2 115 (p 1e-25), where the signals give 1,400-9,700
    signal_windows = {0, 128, 2560, 2688}
    assert signal_windows <= set(ref["index"])
    assert (ref[~ref["index"].isin(signal_windows)]["statistic"] < 200).all()
    assert_same_hits(hits, ref, threshold=-2 * np.log(1e-25))
    assert stamps.shape == (len(hits), 64, 256)
    assert set(hits["index"] % 1024) <= set(range(0, 1024 - 128, 128))  # seven windows per coarse channel


def test_stamps_are_the_cleaned_windows(small_obs):
    path, _ = small_obs("s.h5", n_coarse=2, width=16384, signals={1: [Signal(5000, 0.3, 150.0, 6.0)]})
    with open_observation(path) as obs:
        hits, stamps = detect(obs, Parameters())
        block = obs.coarse_channel(1)
    cleaned = plain_clean(block)
    width = cleaned.shape[1]
    assert len(hits) >= 1 and (hits["coarse_channel"] == 1).all()
    for row, index in enumerate(hits["index"]):
        start = index - width
        np.testing.assert_allclose(stamps[row], cleaned[:, start:start + 256], rtol=1e-6, atol=1e-2)


def _windows_on(truth_row, hits: pd.DataFrame) -> pd.DataFrame:
    lo, hi = sorted((truth_row["index"], truth_row["index"] + drift_span(truth_row["drift_rate"])))
    return hits[(hits["index"] <= hi) & (hits["index"] + 256 > lo)]


def test_hits_land_on_injected_signals(small_obs):
    # 2048 is the original's threshold for real data; on synthetic chi^2 noise the noise windows
    # stay below ~150 while SNR 20 signals reach ~600, so 400 separates them.
    path, truth = small_obs("sig.h5", n_coarse=3, width=65536, n_signals=9, snr_range=(20.0, 60.0), seed=5)
    with open_observation(path) as obs:
        hits, _ = detect(obs, Parameters(threshold=400.0))
    strong = truth[truth["snr"] >= 20]
    assert len(strong) == 9
    for _, signal in strong.iterrows():
        assert len(_windows_on(signal, hits)) >= 1, f"no hit window on {signal.to_dict()}"
    # and no hit is far from every signal (one window of slack either side)
    on_any = np.zeros(len(hits), bool)
    for _, signal in truth.iterrows():
        lo, hi = sorted((signal["index"], signal["index"] + drift_span(signal["drift_rate"])))
        on_any |= ((hits["index"] <= hi + 256) & (hits["index"] + 512 > lo)).to_numpy()
    assert on_any.all(), hits[~on_any]


def test_noise_only_file_has_no_hits(small_obs):
    path, _ = small_obs("noise.h5", n_coarse=2, width=16384, noise_only=True)
    with open_observation(path) as obs:
        hits, stamps = detect(obs, Parameters())
    assert len(hits) == 0 and stamps.shape == (0, 16, 256)
    assert hits.dtypes["index"] == np.int64 and hits.dtypes["statistic"] == np.float64


def test_pvalue_mode_is_a_statistic_threshold(small_obs):
    path, _ = small_obs("p.h5", n_coarse=1, width=16384, n_signals=3, snr_range=(30.0, 100.0))
    with open_observation(path) as obs:
        by_p, _ = detect(obs, Parameters(pvalue=1e-25))
        by_stat, _ = detect(obs, Parameters(threshold=-2 * np.log(1e-25)))  # chi^2(2): p = exp(-K^2 / 2)
    assert len(by_p) > 0 and (by_p["pvalue"] < 1e-25).all()
    assert by_p["index"].tolist() == by_stat["index"].tolist()


def test_other_window_and_stride(small_obs):
    from scipy import stats

    path, _ = small_obs("ws.h5", n_coarse=1, width=16384, n_signals=2, snr_range=(80.0, 150.0))
    with open_observation(path) as obs:
        hits, stamps = detect(obs, Parameters(window=512, stride=256, threshold=500.0))
        block = obs.coarse_channel(0)
    assert len(hits) > 0 and stamps.shape[1:] == (16, 512)
    assert (hits["index"] % 256 == 0).all()
    first = int(hits["index"].iloc[0])
    cleaned = plain_clean(block)
    expected = stats.normaltest(cleaned[:, first:first + 512].ravel()).statistic
    assert hits["statistic"].iloc[0] == pytest.approx(expected, rel=1e-6)


def test_best_per_band_takes_the_top_statistics_of_each_band():
    hits = pd.DataFrame({"freqs": [1100.0, 1200.0, 1400.0, 1500.0, 1650.0, 1800.0, 900.0, 1300.0],
                         "statistic": [3000.0, 5000.0, 4000.0, 2500.0, 2600.0, 9000.0, 99999.0, 2100.0]})
    best = best_per_band(hits, 2)
    assert best["row"].tolist() == [1, 2, 4, 3, 5]
    assert best["band"].tolist() == ["1000-1400", "1000-1400", "1400-1700", "1400-1700", "1700-"]
    assert best_per_band(hits.iloc[:0], 4).empty


def test_too_many_knots_for_the_coarse_channel():
    with pytest.raises(UsageError, match="--knots 2000 is too many"):
        detect_block(np.ones((4, 1024), np.float32), Parameters(knots=2000))


@pytest.mark.parametrize("kw, message", [
    ({"window": 1}, "--window"), ({"stride": 0}, "--stride"), ({"knots": 0}, "--knots"),
    ({"pvalue": 0.0}, "--pvalue"), ({"best_per_band": -1}, "--best-per-band"),
])
def test_parameters_refuse_bad_values(kw, message):
    with pytest.raises(UsageError, match=message):
        Parameters(**kw)


def test_memory_stays_near_one_coarse_channel(small_obs):
    import tracemalloc

    path, _ = small_obs("mem.fil", n_coarse=4, width=65536, n_signals=8, snr_range=(50.0, 200.0))
    with open_observation(path) as obs:
        detect(obs, Parameters(threshold=1e9))  # load the compiled kernels before measuring
        tracemalloc.start()
        try:
            detect(obs, Parameters())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    block_bytes = 16 * 65536 * 4
    assert peak < 3 * block_bytes, f"peak {peak / block_bytes:.2f}x one coarse channel"
