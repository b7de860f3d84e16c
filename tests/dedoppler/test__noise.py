"""The sampled exact percentiles against numpy, and turboSETI's noise estimate."""

from __future__ import annotations

import numpy as np
import pytest

from bl_reservoir.dedoppler._noise import noise_stats, percentiles

RNG = np.random.default_rng(8)
SPECTRA = {
    "gaussian": RNG.normal(1000.0, 10.0, 1 << 20),
    "chi-square with spikes": np.where(RNG.random(1 << 18) < 0.01, 1e6, RNG.chisquare(3, 1 << 18)),
    "sorted": np.sort(RNG.random(100_003)),
    "two values": np.repeat([0.0, 1.0], 1 << 16),
    "few distinct values": RNG.integers(0, 3, 1 << 17).astype(float),
    "small": RNG.normal(size=1000),
}


@pytest.mark.parametrize("name", SPECTRA)
def test_percentiles_equal_numpys(name):
    x = SPECTRA[name].astype(np.float32)
    np.testing.assert_allclose(percentiles(x), np.percentile(x, [5, 50, 95]), rtol=1e-12, atol=0)


def test_a_spectrum_with_nans_falls_back_to_numpy():
    x = RNG.normal(size=1 << 16).astype(np.float32)
    x[::1000] = np.nan
    assert np.isnan(percentiles(x)).all() and np.isnan(np.percentile(x, [5, 50, 95])).all()


@pytest.mark.parametrize("name", SPECTRA)
def test_noise_stats_is_turbosetis_estimate(name):
    x = SPECTRA[name].astype(np.float32)
    low, median, high = np.percentile(x, [5, 50, 95])
    central = x[(x >= low) & (x <= high)].astype(np.float64)  # turboSETI's comp_stats keeps both ends
    got_median, got_std = noise_stats(x)
    assert got_median == pytest.approx(median, rel=1e-12)
    assert got_std == pytest.approx(central.std() if central.size and central.std() > 0 else 1.0, rel=1e-9)
