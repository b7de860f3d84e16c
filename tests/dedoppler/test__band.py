"""A coarse channel with its neighbours' nearest channels: windows across the pieces, margins from neighbours."""

from __future__ import annotations

import numpy as np

from bl_reservoir.dedoppler._band import Band, bands


def _band() -> tuple[Band, np.ndarray]:
    whole = np.arange(3 * 40, dtype=np.float32).reshape(3, 40)
    return Band(whole[:, 5:30].copy(), whole[:, :5].copy(), whole[:, 30:36].copy()), whole[:, :36]


def test_windows_read_across_the_pieces_and_stop_at_the_band():
    band, whole = _band()
    assert (band.offset, band.width) == (5, 36)
    for lo, hi in ((0, 36), (3, 8), (28, 33), (-4, 2), (34, 50), (10, 20)):
        window = band.window(lo, hi)
        np.testing.assert_array_equal(window, whole[:, max(lo, 0):min(hi, 36)])
        assert window.flags.c_contiguous and window.dtype == np.float32


def test_data_inside_the_coarse_channel_is_the_block_itself():
    band, whole = _band()
    data, first = band.data(7, 29)
    assert data is band.block and first == 5
    data, first = band.data(2, 12)
    assert first == 2 and np.array_equal(data, whole[:, 2:12])


def test_each_coarse_channel_is_searched_in_two_parts_with_margins_from_its_neighbours():
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(4, 50)).astype(np.float32) for _ in range(3)]
    pulled = []

    def channels():
        for cc, block in enumerate(blocks):
            pulled.append(cc)
            yield cc, block, block.sum(axis=0)

    parts = []
    for cc, _, band, first in bands(channels(), 8):
        parts.append((cc, band, first, list(pulled)))
    assert [(cc, first) for cc, _, first, _ in parts] == [(0, 0), (0, 42), (1, 0), (1, 42), (2, 0), (2, 42)]
    # the first part of a coarse channel is searched before the next coarse channel is read
    assert [seen[-1] for _, _, _, seen in parts] == [0, 1, 1, 2, 2, 2]
    for (cc, main, _, _), (_, tail, _, _) in zip(parts[0::2], parts[1::2]):
        block = blocks[cc]
        assert main.block is block and main.own == slice(main.offset, main.offset + 42)
        assert np.array_equal(main.left, blocks[cc - 1][:, -8:] if cc else block[:, :0])
        assert main.right.shape[1] == 0  # its own last 8 channels are its margin there
        assert np.array_equal(tail.block, block[:, 42:]) and tail.own == slice(16, 24)
        assert np.array_equal(tail.left, block[:, 26:42])
        assert np.array_equal(tail.right, blocks[cc + 1][:, :8] if cc < 2 else block[:, :0])


def test_a_coarse_channel_narrower_than_three_margins_is_one_part():
    blocks = [np.full((2, 20), float(cc), dtype=np.float32) for cc in range(2)]
    parts = list(bands(iter([(cc, b, b.sum(axis=0)) for cc, b in enumerate(blocks)]), 8))
    assert [(cc, first) for cc, _, _, first in parts] == [(0, 0), (1, 0)]
    first, second = parts[0][2], parts[1][2]
    assert first.block is blocks[0] and np.array_equal(first.right, blocks[1][:, :8])
    assert np.array_equal(second.left, blocks[0][:, -8:]) and second.right.shape[1] == 0
