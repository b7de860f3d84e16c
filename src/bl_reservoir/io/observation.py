"""`Observation`: one file, read one coarse channel at a time."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bl_reservoir.errors import InvalidObservation, ReservoirWarning
from bl_reservoir.io import header as _header
from bl_reservoir.io.fetch import obs_name

#: The most one coarse channel may take in memory as float32 (n_time x width x 4 bytes). A block is
#: allocated whole and a header may claim any size, so a larger one is refused when the file is opened.
#: A BL fine-resolution coarse channel needs 64 MiB; a high-time-resolution one a few hundred.
MAX_COARSE_CHANNEL_BYTES = 4 * 2**30


class Observation:
    """A BL observation opened for reading; subclasses supply `_read(start, stop)`.

    Memory stays at one coarse channel: nothing reads the whole array at once.
    """

    def __init__(self, path: str | os.PathLike, header: Mapping[str, Any], n_time: int,
                 coarse_channel_width: int | None = None):
        self.path = os.fspath(path)
        self.header: dict[str, Any] = dict(header)
        self.n_time = int(n_time)
        self.n_chans = int(self.header["nchans"])
        self.n_ifs = int(self.header["nifs"])
        width = coarse_channel_width or _header.coarse_channel_width(self.header, self.path)
        if width <= 0 or self.n_chans % width:
            raise InvalidObservation(self.path, f"coarse-channel width {width} does not divide nchans {self.n_chans}")
        self.coarse_channel_width = int(width)
        self.n_coarse_channels = self.n_chans // self.coarse_channel_width
        block_bytes = self.n_time * self.coarse_channel_width * np.dtype(np.float32).itemsize
        if block_bytes > MAX_COARSE_CHANNEL_BYTES:
            raise InvalidObservation(self.path, f"one coarse channel ({self.n_time} x {width} samples) would "
                                     f"take {block_bytes / 2**30:.1f} GiB, over the "
                                     f"{MAX_COARSE_CHANNEL_BYTES / 2**30:.0f} GiB a block may use; set nfpc in the "
                                     "header to read it in narrower coarse channels")

    @property
    def name(self) -> str:
        """File name without directory and extension (the `obs_name` of contract C3)."""
        return obs_name(self.path)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_time, self.n_ifs, self.n_chans)

    def frequencies(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """MHz of fine channels [start, stop)."""
        return _header.frequencies(self.header, start, self.n_chans if stop is None else stop)

    def coarse_channel_bounds(self, i: int) -> tuple[int, int]:
        """Fine-channel range [start, stop) of coarse channel `i`."""
        if not 0 <= i < self.n_coarse_channels:
            raise IndexError(f"coarse channel {i} out of range 0..{self.n_coarse_channels - 1}")
        start = i * self.coarse_channel_width
        return start, start + self.coarse_channel_width

    def coarse_channel(self, i: int) -> np.ndarray:
        """float32 array (n_time, coarse_channel_width) of IF 0 (Stokes I), read on demand."""
        return self.read_channels(*self.coarse_channel_bounds(i))

    def iter_coarse_channels(self, read_ahead: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(i, block)` for every coarse channel, one block alive at a time.

        With `read_ahead` a background thread reads block i + 1 while the caller works on block i
        (two blocks alive, never more): reads (h5py, `os.pread`) release the GIL, so they overlap
        with kernels that do too (numba `nogil=True`).
        """
        if not read_ahead or self.n_coarse_channels < 2:
            for i in range(self.n_coarse_channels):
                yield i, self.coarse_channel(i)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
            pending = pool.submit(self.coarse_channel, 0)
            for i in range(self.n_coarse_channels):
                block = pending.result()
                pending = pool.submit(self.coarse_channel, i + 1) if i + 1 < self.n_coarse_channels else None
                yield i, block
                del block

    def read_channels(self, start: int, stop: int) -> np.ndarray:
        """float32 array (n_time, stop - start) of fine channels [start, stop) of IF 0."""
        if not 0 <= start < stop <= self.n_chans:
            raise IndexError(f"channels [{start}, {stop}) out of range 0..{self.n_chans}")
        block = self._read(start, stop)
        repair_missing(block, self.path, start)
        return block

    def _read(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle."""

    def __enter__(self) -> Observation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.path!r} n_time={self.n_time} n_chans={self.n_chans} "
                f"coarse={self.n_coarse_channels}x{self.coarse_channel_width}>")


def repair_missing(block: np.ndarray, path: str, start: int = 0) -> int:
    """Replace missing samples of `block` (n_time, W), channels from `start`, in place; return how many.

    Missing: NaN and infinite samples (a corrupt chunk), and spectra that are zero in every
    channel (a dropped integration) while others hold data. Left in, one NaN turns every noise
    estimate and bandpass fit of its coarse channel into NaN (no hit there at all), and one zero
    spectrum makes every window non-normal (a hit in every window). Each missing sample becomes
    its channel's median over time, or, in a channel with no good sample, the block's median; one
    `ReservoirWarning` names the file, the channels and what was replaced. A block of zeros only
    (a coarse channel nobody recorded) stays as it is; one with nothing finite is refused.
    Clean blocks cost one summing pass (NaN and inf survive a sum).
    """
    row_sums = block.sum(axis=1)
    zero_rows = np.flatnonzero(row_sums == 0)
    zero_rows = zero_rows[[not block[r].any() for r in zero_rows]]
    if np.isfinite(row_sums).all() and (zero_rows.size == 0 or zero_rows.size == block.shape[0]):
        return 0  # clean, or zeros only
    bad = ~np.isfinite(block)
    n_nan = int(np.count_nonzero(bad))
    bad[zero_rows] = True
    stop = start + block.shape[1]
    if bad.all():
        raise InvalidObservation(path, f"channels {start}..{stop}: no sample is finite and non-zero")
    columns = np.flatnonzero(bad.any(axis=0))
    if columns.size == 0:  # finite, but large enough for a row sum to overflow
        return 0
    bad_cols = bad[:, columns]
    values = np.where(bad_cols, np.nan, block[:, columns])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": channels with no good sample
        level = np.nanmedian(values, axis=0)
    empty = np.isnan(level)
    if empty.any():
        level[empty] = np.median(block[~bad])
    block[:, columns] = np.where(bad_cols, level.astype(block.dtype), values)
    what = [f"{n_nan} NaN or infinite samples"] if n_nan else []
    what += [f"{zero_rows.size} all-zero spectra"] if zero_rows.size else []
    warnings.warn(f"{path}: channels {start}..{stop}: {' and '.join(what)} in {columns.size} channels replaced by "
                  "their channel's median over time", ReservoirWarning, stacklevel=2)
    return int(np.count_nonzero(bad))
