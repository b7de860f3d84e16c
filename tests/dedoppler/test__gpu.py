"""The array-module tree search (`_gpu.best_sums`) run with numpy: it must give what the numba kernel gives."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from bl_reservoir.dedoppler import _gpu, _sums
from bl_reservoir.dedoppler._band import Band
from bl_reservoir.dedoppler._taylor import taylor_path
from bl_reservoir.errors import UsageError

PAD = 0.7


def _n_rows(n_time: int) -> int:
    return 1 << max(0, (n_time - 1).bit_length())


def _block(n_time: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_time, width)).astype(np.float32)


def _path_sums(block: np.ndarray, n_rows: int, bins: int) -> np.ndarray:
    """float64 (W,): sums along the tree's own path of drift `bins` (>= 0): row i at k * i + path[s, i],
    bins = k * step + s; rows past n_time are zero, columns past the band PAD."""
    n_time, width = block.shape
    step = max(n_rows - 1, 1)
    padded = np.full((n_rows, width + 2 * n_rows + bins), PAD)
    padded[:n_time, :width] = block
    padded[n_time:] = 0.0
    k, s = divmod(bins, step) if n_rows > 1 else (bins, 0)
    path = taylor_path(n_rows)[s]
    return sum(padded[i, k * i + path[i]:][:width] for i in range(n_rows))


def _drift_maxima(block: np.ndarray, n_rows: int, max_bins: int, min_bins: int) -> dict[int, np.ndarray]:
    """Signed drift bins -> path sums per start channel (negative drifts: the reversed search, reversed back)."""
    sums = {}
    for bins in range(min_bins, max_bins + 1):
        sums[bins] = _path_sums(block, n_rows, bins)
        sums[-bins] = _path_sums(block[:, ::-1], n_rows, bins)[::-1]
    return sums


def _block_max(sums: dict[int, np.ndarray], centre: int, n_rows: int) -> np.ndarray:
    """Largest sum over the drift block with signed centre `centre` (bins k * step .. k * step + n_rows - 1)."""
    first = abs(centre) - max(n_rows - 1, 1) // 2
    inside = [v for b, v in sums.items()
              if np.sign(b) in (np.sign(centre), 0) and first <= abs(b) <= first + n_rows - 1]
    return np.max(inside, axis=0)


@pytest.mark.parametrize(("n_time", "width", "max_bins", "min_bins", "factor"), [
    (16, 256, 40, 0, 1),
    (16, 1000, 40, 5, 2),
    (16, 4096, 300, 10, 1),
    (5, 1000, 20, 0, 1),  # padded to 8 rows
    (5, 2000, 20, 3, 2),
    (1, 256, 7, 0, 1),
    (1, 1000, 7, 2, 2),
])
def test_matches_the_numba_search(n_time, width, max_bins, min_bins, factor):
    block = _block(n_time, width, seed=n_time * width + max_bins)
    n_rows = _n_rows(n_time)
    cpu_best, cpu_centre, cpu_radius = _sums.best_sums(Band.alone(block), n_rows, max_bins, min_bins, PAD,
                                                       factor=factor)
    best, centre, radius = _gpu.best_sums(block, n_rows, max_bins, min_bins, PAD, factor=factor, xp=np)

    assert best.dtype == np.float32 and centre.dtype == np.int64 and best.shape == (width // factor,)
    np.testing.assert_allclose(best, cpu_best, rtol=1e-5, atol=1e-5)
    assert radius == cpu_radius
    # Adjacent drift blocks share their boundary bin (block k's last drift is block k+1's first), so
    # when that drift wins both blocks hold the same sum; the numba kernel's fused running max
    # (`best += max(v - best, 0)`) rounds, which can let the later block win by an ulp. So centres
    # may differ only where both blocks hold the best sum; about 0.2% of channels here.
    assert np.mean(centre == cpu_centre) >= 0.99
    differ = np.flatnonzero(centre != cpu_centre)
    if differ.size:
        summed = block[:, 0::2] + block[:, 1::2] if factor == 2 else block
        sums = _drift_maxima(summed, n_rows, max_bins, min_bins)
        for j in differ:
            ours, theirs = (_block_max(sums, c, n_rows)[j] for c in (centre[j], cpu_centre[j]))
            assert ours == pytest.approx(theirs, rel=1e-5) == pytest.approx(best[j], rel=1e-5)


@pytest.mark.parametrize(("n_time", "max_bins", "min_bins"), [(16, 40, 0), (5, 20, 4), (2, 5, 0), (2, 6, 3), (1, 3, 0)])
def test_best_is_the_largest_tree_path_sum(n_time, max_bins, min_bins):
    block = _block(n_time, 120, seed=7 + n_time)
    n_rows = _n_rows(n_time)
    best, _, _ = _gpu.best_sums(block, n_rows, max_bins, min_bins, PAD, xp=np)
    brute = np.max(list(_drift_maxima(block, n_rows, max_bins, min_bins).values()), axis=0)
    np.testing.assert_allclose(best, brute, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_drifting_line_is_found_in_the_same_drift_block(sign):
    n_time, width, max_bins, start, bins = 16, 512, 60, 200, 37
    n_rows = _n_rows(n_time)
    k, s = divmod(bins, n_rows - 1)
    block = _block(n_time, width, seed=3)
    for i, offset in enumerate(k * np.arange(n_rows) + taylor_path(n_rows)[s]):
        block[i, start + sign * offset] += 20.0
    cpu_best, cpu_centre, _ = _sums.best_sums(Band.alone(block), n_rows, max_bins, 0, PAD)
    best, centre, radius = _gpu.best_sums(block, n_rows, max_bins, 0, PAD, xp=np)

    assert centre[start] == cpu_centre[start] == sign * (k * (n_rows - 1) + (n_rows - 1) // 2)
    assert abs(abs(centre[start]) - bins) <= radius
    assert best[start] == pytest.approx(cpu_best[start], rel=1e-5)
    assert best[start] >= 20.0 * n_time - 20  # the line's 320 plus noise of std 4
    assert np.argmax(best) == start


def test_without_cupy_the_gpu_path_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import fails even where cupy is installed
    with pytest.raises(UsageError, match="cupy") as info:
        _gpu.best_sums(_block(16, 64, seed=1), 16, 10, 0, PAD)
    assert "bl-reservoir[gpu]" in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_the_gpu_search_reports_the_cpu_hits(small_obs, monkeypatch):
    # no GPU here: numpy stands in for cupy, so this checks the --gpu pipeline, not the device
    from bl_reservoir.dedoppler import SearchParameters, search_observation
    from bl_reservoir.io import open_observation

    path, truth = small_obs("gpu.h5", n_coarse=2, width=8192, n_signals=8, snr_range=(15, 40),
                            drift_range=(-4, 4), seed=21)
    monkeypatch.setattr(_gpu, "require_cupy", lambda: np)
    found = {}
    for gpu in (False, True):
        with open_observation(path) as obs:
            found[gpu], _, _ = search_observation(obs, SearchParameters(gpu=gpu))
    assert len(found[False]) >= len(truth[truth.snr >= 20])
    pd.testing.assert_frame_equal(found[True], found[False])


def test_the_script_refuses_gpu_without_cupy_in_one_line(small_obs, monkeypatch, capsys):
    from bl_reservoir.dedoppler.search import main

    path, _ = small_obs("nogpu.h5", n_coarse=1, width=4096, noise_only=True)
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main([str(path), "--gpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "cupy" in lines[0] and "without --gpu" in lines[0]
