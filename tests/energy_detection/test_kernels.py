"""Kernels on small arrays: each against the plain scipy computation it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from bl_reservoir.energy_detection import cleaned_stamps, fit_bandpass, repair_dc, window_starts, window_statistics
from bl_reservoir.energy_detection._kernels import bandpass_knots


def _block(n_time: int = 16, width: int = 4096, seed: int = 0) -> np.ndarray:
    """chi^2 noise on a curved bandpass, float32, with a few bright channels."""
    rng = np.random.default_rng(seed)
    bandpass = 1e6 * (1.2 - 0.4 * np.cos(np.linspace(0, 3 * np.pi, width)))
    block = (bandpass * rng.chisquare(48, (n_time, width)) / 48).astype(np.float32)
    block[:, 700:703] += 5e6
    return block


def test_repair_dc_replaces_the_two_centre_columns():
    block = np.arange(2 * 16, dtype=np.float32).reshape(2, 16) ** 2
    before = block.copy()
    repair_dc(block)
    dc = 8
    np.testing.assert_array_equal(block[:, dc], (before[:, dc + 1] + before[:, dc - 3]) / 2)
    np.testing.assert_array_equal(block[:, dc - 1], (before[:, dc + 2] + before[:, dc - 2]) / 2)
    untouched = [c for c in range(16) if c not in (dc, dc - 1)]
    np.testing.assert_array_equal(block[:, untouched], before[:, untouched])


def test_knots_are_the_originals():
    assert bandpass_knots(1_048_576).tolist() == list(range(65537, 1_048_576, 65537))
    assert bandpass_knots(4096, 16).tolist() == [257.0 * k for k in range(1, 16)]


@pytest.mark.parametrize("width, knots", [(4096, 16), (16384, 16), (1000, 7), (65536, 4)])
def test_fit_bandpass_equals_splrep(width, knots):
    from scipy import interpolate

    spectrum = _block(4, width).mean(axis=0)
    x = np.arange(width)
    spline = interpolate.splrep(x, spectrum, t=np.arange(0, width, width // knots + 1)[1:])
    reference = interpolate.splev(x, spline)
    fit = fit_bandpass(spectrum, knots)
    assert fit.dtype == np.float64 and fit.shape == (width,)
    np.testing.assert_allclose(fit, reference, rtol=1e-10)


def test_window_starts_are_the_originals():
    for width in (4096, 16384, 1_048_576, 1_033_216, 999_424):
        assert window_starts(width).tolist() == list(range(0, width - 128, 128))
    assert window_starts(1000, 96, 64).tolist() == list(range(0, 1000 - 96 + 1, 64))
    assert window_starts(100).size == 0


def _reference(cleaned: np.ndarray, window: int, stride: int):
    from scipy import stats

    starts = range(0, cleaned.shape[1] - window + 1, stride)
    pairs = [stats.normaltest(cleaned[:, i:i + window].ravel()) for i in starts]
    return np.array([p.statistic for p in pairs]), np.array([p.pvalue for p in pairs])


@pytest.mark.parametrize("window, stride", [(256, 128), (96, 64), (128, 128), (200, 50)])
def test_window_statistics_equal_scipy_normaltest(window, stride):
    block = _block(width=4096)
    fit = fit_bandpass(block.mean(axis=0))
    starts, statistic, pvalue = window_statistics(block, fit, window=window, stride=stride)
    ref_stat, ref_p = _reference(block - fit, window, stride)  # float32 - float64: the original's values
    assert starts.tolist() == list(range(0, 4096 - window + 1, stride))
    np.testing.assert_allclose(statistic, ref_stat, rtol=1e-7)
    np.testing.assert_allclose(pvalue, ref_p, rtol=1e-6, atol=1e-300)
    assert statistic.max() > 1000  # the bright channels make at least one strong window


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on the constant windows
def test_window_statistics_without_fit_and_with_constant_windows():
    block = np.ones((8, 1024), np.float32)
    block[:, 512:] = np.random.default_rng(1).standard_normal((8, 512))
    _, statistic, pvalue = window_statistics(block, window=256, stride=128)
    ref_stat, _ = _reference(block.astype(np.float64), 256, 128)
    assert np.isnan(statistic[:3]).all() and np.isnan(ref_stat[:3]).all()  # no spread: NaN, as scipy
    np.testing.assert_allclose(statistic[4:], ref_stat[4:], rtol=1e-7)
    assert np.isnan(pvalue[:3]).all()


def test_window_statistics_far_from_zero_mean():
    # a constant offset much larger than the spread must not cost precision (central sums)
    rng = np.random.default_rng(2)
    block = (1e6 + rng.standard_normal((16, 1024)) * 10).astype(np.float32)
    _, statistic, _ = window_statistics(block)
    ref_stat, _ = _reference(block.astype(np.float64), 256, 128)
    np.testing.assert_allclose(statistic, ref_stat, rtol=1e-6)


def test_window_statistics_checks_its_inputs():
    with pytest.raises(ValueError, match="fit has shape"):
        window_statistics(np.zeros((2, 512), np.float32), np.zeros(10))
    with pytest.raises(ValueError, match="positive"):
        window_statistics(np.zeros((2, 512), np.float32), window=0)
    starts, statistic, _ = window_statistics(np.zeros((2, 100), np.float32))
    assert starts.size == statistic.size == 0


def test_cleaned_stamps_are_float32_block_minus_fit():
    block = _block(width=1024)
    fit = fit_bandpass(block.mean(axis=0))
    stamps = cleaned_stamps(block, fit, np.array([0, 384]), 256)
    assert stamps.shape == (2, 16, 256) and stamps.dtype == np.float32
    np.testing.assert_array_equal(stamps[1], (block[:, 384:640] - fit[384:640]).astype(np.float32))
