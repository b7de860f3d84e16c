"""A coarse channel as the search sees it: its own channels plus its neighbours' on both sides.

A signal that crosses a coarse-channel boundary is summed whole only if the search of the channel
where it starts can read past the boundary. So each coarse channel is searched with a margin of
fine channels from the coarse channels beside it (`margin`, twice the largest drift excursion),
and only the hits that start in the coarse channel proper are kept: the neighbour that sees the
same signal in its margin drops it there, and its own channels along that signal's track are
suppressed by the whole path's sum, as they would be in a search of the whole band.

The margins are taken from the neighbouring coarse channels as they are read anyway (each coarse
channel is read once, and its DC spike repaired once), and never copied into one wide array:
kernels get the coarse channel itself, or a small window copied around the few columns they need
near its edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bl_reservoir.dedoppler._noise import CoarseNoise


def blank_dc(block: np.ndarray) -> None:
    """Replace the centre channel (the DC spike of the coarse-channel FFT) by its neighbours' mean, in place."""
    mid = block.shape[1] // 2
    if 0 < mid < block.shape[1] - 1:
        block[:, mid] = 0.5 * (block[:, mid - 1] + block[:, mid + 1])


@dataclass(frozen=True)
class Band:
    """`block` (n_time, W) with `left` and `right` (n_time, <= margin) beside it; columns count from the first
    left channel, so `block` is `[offset, offset + W)`. Hits are kept from `block` columns `proper` only (all of
    them by default)."""

    block: np.ndarray
    left: np.ndarray
    right: np.ndarray
    proper: tuple[int, int] | None = None

    @property
    def own(self) -> slice:
        """Band columns whose hits this band reports."""
        start, stop = self.proper or (0, self.block.shape[1])
        return slice(self.offset + start, self.offset + stop)

    @classmethod
    def alone(cls, block: np.ndarray) -> Band:
        empty = np.empty((block.shape[0], 0), dtype=block.dtype)
        return cls(block, empty, empty)

    @property
    def n_time(self) -> int:
        return self.block.shape[0]

    @property
    def offset(self) -> int:
        return self.left.shape[1]

    @property
    def width(self) -> int:
        return self.left.shape[1] + self.block.shape[1] + self.right.shape[1]

    @property
    def pieces(self) -> tuple[np.ndarray, ...]:
        return tuple(p for p in (self.left, self.block, self.right) if p.shape[1])

    def max(self) -> float:
        return max(float(p.max()) for p in self.pieces)

    def window(self, lo: int, hi: int) -> np.ndarray:
        """float32 (n_time, ...) C-contiguous copy of columns [lo, hi) clipped to the band."""
        lo, hi = max(lo, 0), min(hi, self.width)
        parts, start = [], 0
        for piece in (self.left, self.block, self.right):
            stop = start + piece.shape[1]
            if lo < stop and hi > start:
                parts.append(piece[:, max(lo, start) - start:min(hi, stop) - start])
            start = stop
        if not parts:
            return np.empty((self.n_time, 0), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def data(self, lo: int, hi: int) -> tuple[np.ndarray, int]:
        """An array holding columns [lo, hi) (clipped to the band), and the band column of its first one: the
        coarse channel itself when they lie in it (no copy), else a window."""
        lo, hi = max(lo, 0), min(hi, self.width)
        if self.offset <= lo and hi <= self.offset + self.block.shape[1]:
            return self.block, self.offset
        return self.window(lo, hi), lo


def prepare(block: np.ndarray, repair_dc: bool) -> CoarseNoise:
    """The noise of a coarse channel's spectrum integrated over time, before its DC spike is repaired
    (turboSETI estimates it there); then the spike repaired in place."""
    noise = CoarseNoise(block.sum(axis=0))  # float32: 16-64 terms lose nothing that matters, and it is 4x faster
    if repair_dc:
        blank_dc(block)
    return noise


def prepared(obs, read_ahead: bool, repair_dc: bool) -> Iterator[tuple[int, np.ndarray, CoarseNoise]]:
    """Each coarse channel of `obs` as `(i, block, noise)`, `prepare`d."""
    for cc, block in obs.iter_coarse_channels(read_ahead=read_ahead):
        yield cc, block, prepare(block, repair_dc)


def bands(channels: Iterator[tuple[int, np.ndarray, CoarseNoise]], margin: int
          ) -> Iterator[tuple[int, CoarseNoise, Band, int]]:
    """`(i, noise, band, first)` for each part of each coarse channel: the band's `block` starts at channel
    `first` of coarse channel i, and it holds up to `margin` channels beside its own hits on each side.

    A coarse channel is searched in two parts, so that the next one is read (in the background, with
    read-ahead) while the first part is searched: its channels up to `margin` from its end, which its own
    channels are margin enough for; then, once the next coarse channel is there, the last `margin` channels,
    with the first `margin` of the next one. Narrower than 3 margins, it is one part, searched once the next
    coarse channel is read. Two coarse channels in memory, three with read-ahead.
    """
    left = None
    current = next(channels, None)
    while current is not None:
        cc, block, noise = current
        width = block.shape[1]
        empty = np.empty((block.shape[0], 0), dtype=block.dtype)
        left = empty if left is None else left
        split = 0 < margin and 3 * margin <= width
        if split:
            yield cc, noise, Band(block, left, empty, (0, width - margin)), 0
        following = next(channels, None)
        right = np.ascontiguousarray(following[1][:, :margin]) if following is not None else empty
        if split:
            tail = Band(np.ascontiguousarray(block[:, width - margin:]),
                        np.ascontiguousarray(block[:, width - 3 * margin:width - margin]), right)
            yield cc, noise, tail, width - margin
        else:
            yield cc, noise, Band(block, left, right), 0
        left = np.ascontiguousarray(block[:, max(0, width - margin):])
        current = following
