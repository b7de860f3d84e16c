"""The Taylor tree against brute-force sums along straight paths (the documented tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

from bl_reservoir.dedoppler._refine import drift_offsets, refine
from bl_reservoir.dedoppler._taylor import (
    drift_search,
    join_signs,
    padded_width,
    reverse_channels,
    sum_channels,
    taylor_path,
    taylor_tree,
)


def _path_sum(data: np.ndarray, offsets: np.ndarray, start: int) -> float:
    n_time, width = data.shape
    cols = start + offsets[:n_time]
    return float(sum(data[i, c] for i, c in enumerate(cols) if 0 <= c < width))


@pytest.mark.parametrize("n_rows", [1, 2, 4, 8, 16, 32])
def test_taylor_paths_stay_within_one_channel_of_straight_lines(n_rows):
    paths = taylor_path(n_rows)
    rows = np.arange(n_rows)
    for s in range(n_rows):
        straight = np.round(s * rows / max(n_rows - 1, 1))
        assert np.abs(paths[s] - straight).max() <= 1  # the documented tolerance
        assert paths[s, 0] == 0 and paths[s, -1] == s  # starts and ends exactly
    assert np.array_equal(paths[-1], rows)  # the largest drift is exact


@pytest.mark.parametrize("n_rows", [4, 16])
def test_tree_equals_brute_force_sum_along_its_paths(n_rows):
    data = np.random.default_rng(3).normal(size=(n_rows, 64)).astype(np.float32)
    tree = taylor_tree(data)
    paths = taylor_path(n_rows)
    for s in range(n_rows):
        for j in range(64):
            assert tree[s, j] == pytest.approx(_path_sum(data, paths[s], j), abs=1e-4)


def test_tree_equals_straight_lines_for_exact_slopes():
    data = np.random.default_rng(4).normal(size=(16, 80)).astype(np.float32)
    tree = taylor_tree(data)
    rows = np.arange(16)
    for s in (0, 15):  # slopes of 0 and 1 channel per row are integer: no staircase
        for j in range(60):
            assert tree[s, j] == pytest.approx(data[rows, j + rows * s // 15].sum(), abs=1e-4)


def test_tree_recovers_a_straight_line_within_the_tolerance():
    # a one-channel line on the straight path of every drift: the Taylor path misses at most
    # the rows where it is one channel off, and never more than half of them
    n = 16
    for s in range(n):
        data = np.zeros((n, 40), dtype=np.float32)
        data[np.arange(n), 5 + np.round(s * np.arange(n) / (n - 1)).astype(int)] = 1.0
        hit = taylor_tree(data)[s, 5]
        assert hit >= n / 2
        assert hit == n - np.count_nonzero(taylor_path(n)[s] != np.round(s * np.arange(n) / (n - 1)))


@pytest.mark.parametrize("n_time", [16, 12, 3, 2])
def test_drift_search_blocks_equal_brute_force_over_every_drift(n_time):
    # n_time 12 and 3 are padded to 16 and 4 rows; drifts beyond one block use pre-shifted rows;
    # with 2 rows the first tree level is the whole tree
    n_rows = 1 << (n_time - 1).bit_length()
    step = n_rows - 1
    rng = np.random.default_rng(5)
    width, max_bins = 300, 50
    data = rng.normal(size=(n_time, width)).astype(np.float32)
    padded = np.zeros((n_rows, padded_width(width, n_rows, max_bins, 128)), dtype=np.float32)
    padded[:n_time, :width] = data
    best = np.empty(width, dtype=np.float32)
    block = np.empty(width, dtype=np.int32)
    drift_search(padded, width, max_bins, 3, best, block, 128)
    offsets = drift_offsets(n_rows, max_bins)
    brute = np.array([[_path_sum(data, offsets[b], j) for b in range(max_bins + 1)] for j in range(width)])
    brute[:, :3] = -np.inf  # min_bins = 3
    np.testing.assert_allclose(best, brute.max(axis=1), atol=1e-4)
    # refine over every drift finds the same maximum and names its drift
    exact = np.full(width, -np.inf, dtype=np.float32)
    bins = np.zeros(width, dtype=np.int32)
    refine(data, 0.0, offsets, np.arange(width), np.full(width, max_bins), 0, max_bins, 3, max_bins, exact, bins)
    np.testing.assert_allclose(exact, best, atol=1e-4)
    assert (bins >= 3).all()
    np.testing.assert_allclose(brute[np.arange(width), bins], best, atol=1e-4)
    # split over threads (3 runs of chunks), the search computes the same
    best_t = np.empty(width, dtype=np.float32)
    block_t = np.empty(width, dtype=np.int32)
    drift_search(padded, width, max_bins, 3, best_t, block_t, 128, threads=3)
    np.testing.assert_array_equal(best_t, best)
    np.testing.assert_array_equal(block_t, block)
    # the winning block holds the winning drift (ties aside: equal sums in two blocks)
    in_block = (bins >= block * step) & (bins <= block * step + step)
    assert in_block.mean() > 0.95


def test_refine_sums_the_same_paths_as_the_tree_for_both_signs():
    rng = np.random.default_rng(6)
    data = rng.normal(size=(16, 200)).astype(np.float32)
    offsets = drift_offsets(16, 40)
    best = np.full(200, -np.inf, dtype=np.float32)
    bins = np.zeros(200, dtype=np.int32)
    refine(data, 0.0, offsets, np.array([100]), np.array([-20]), 0, 0, 0, 40, best, bins)
    assert bins[100] == -20
    assert best[100] == pytest.approx(sum(data[i, 100 - offsets[20, i]] for i in range(16)), abs=1e-4)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_sum_channels_equals_summing_each_group_of_channels(factor):
    block = np.random.default_rng(5).normal(size=(3, 10 * factor + 1)).astype(np.float32)  # a ragged last group
    padded = np.full((4, 12), -1.0, dtype=np.float32)
    sum_channels(block, padded[:3, :10], factor)
    expected = block[:, :10 * factor].reshape(3, 10, factor).sum(axis=2)
    np.testing.assert_allclose(padded[:3, :10], expected, rtol=1e-6)
    assert (padded[3] == -1).all() and (padded[:, 10:] == -1).all()  # nothing outside the target is written


@pytest.mark.parametrize("width", [1, 6, 7])
def test_reverse_channels_mirrors_each_row_in_place(width):
    data = np.arange(3 * (width + 2), dtype=np.float32).reshape(3, width + 2)
    expected = data.copy()
    expected[:, :width] = expected[:, :width][:, ::-1]
    reverse_channels(data[:, :width])
    np.testing.assert_array_equal(data, expected)


def test_join_signs_keeps_the_larger_sum_and_signs_its_drift_block():
    best = np.array([5.0, 1.0, 3.0, 2.0], dtype=np.float32)
    block_k = np.array([0, 1, 2, 3], dtype=np.int32)
    mirrored = np.array([9.0, 3.0, 0.0, 4.0], dtype=np.float32)  # channel order reversed: [4, 0, 3, 9]
    block_r = np.array([6, 5, 4, 7], dtype=np.int32)  # mirrored too: [7, 4, 5, 6]
    centre = np.empty(4, dtype=np.int64)
    join_signs(best, block_k, mirrored, block_r, 15, centre)
    np.testing.assert_array_equal(best, [5.0, 1.0, 3.0, 9.0])  # a tie (channel 2: 3 vs 3) keeps the positive drift
    np.testing.assert_array_equal(centre, [0 * 15 + 7, 1 * 15 + 7, 2 * 15 + 7, -(6 * 15 + 7)])
