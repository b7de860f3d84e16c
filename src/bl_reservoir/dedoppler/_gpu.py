"""The coarse tree search written against an array module (`xp`): cupy on a GPU, numpy in the tests.

Why a GPU: every level of the Taylor tree is one whole-array add (the per-row shifts are strides
of a view, see `_shifted`), which is what a GPU does best, and the search over all drifts is
the bulk of the work. Only this coarse stage runs there: the few candidates it leaves are
refined on the CPU by `_sums.exact`, so hits are computed identically with or without a GPU.
Memory stays at a few copies of the block: the drift blocks are searched one at a time.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from bl_reservoir.dedoppler._taylor import fill_padded, join_signs, padded_width, reverse_band, skip_block
from bl_reservoir.errors import UsageError


def require_cupy() -> ModuleType:
    """cupy, or a one-line UsageError saying why the GPU path cannot run here."""
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()  # raises when there is no CUDA device or driver
    except Exception as exc:  # ImportError, CUDARuntimeError, a broken CUDA install: all mean "no GPU path"
        raise UsageError(f"the GPU search needs cupy and a CUDA device "
                         f"(pip install 'bl-reservoir[gpu]'): {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    return cupy


def _shifted(xp: ModuleType, src, shape: tuple[int, ...], strides: tuple[int, ...]):
    return xp.lib.stride_tricks.as_strided(src, shape=shape, strides=strides)


def _level(xp: ModuleType, src, dst, g: int) -> None:
    """One tree merge of groups of g rows into groups of 2g: `src` (P, L) -> `dst` (P, L - g).

    Row s = 2h (+1) of a merged group adds row h of the first half to row h of the second half
    read from h (+1) channels further on: the per-row shift is a stride of a view, so each
    parity is a single add over every group, row and channel.
    """
    n_rows, length = src.shape
    out = length - g
    row, col = src.strides
    shape = (n_rows // (2 * g), g, out)
    first = _shifted(xp, src, shape, (2 * g * row, row, col))
    view = dst.reshape(n_rows // (2 * g), 2 * g, out)
    for parity in (0, 1):
        second = _shifted(xp, src[g:, parity:], shape, (2 * g * row, row + col, col))
        xp.add(first, second, out=view[:, parity::2])


def _search(xp: ModuleType, padded, width: int, max_bins: int, min_bins: int):
    """`_taylor.drift_search` over the whole width: best sum (W,) and winning drift block (W,) on the device."""
    n_rows = padded.shape[0]
    step = max(n_rows - 1, 1)
    best = xp.full(width, -np.inf, dtype=np.float32)
    best_k = xp.zeros(width, dtype=np.int32)
    # level l leaves width + n_rows - 2**l columns: exactly `width` once all rows are merged
    length = width + n_rows - 1
    bufs = [xp.empty(n_rows * length, dtype=np.float32) for _ in range(2)]
    first_block = True
    for k in range(max_bins // step + 1):
        first = k * step
        if skip_block.py_func(first, n_rows, min_bins, max_bins):  # the CPU kernel's rule, in Python
            continue
        # row i pre-shifted by k * i channels (the straight part of the drift), as a view
        row, col = padded.strides
        src = _shifted(xp, padded, (n_rows, length), (row + k * col, col))
        g, n_buf = 1, 0
        while g < n_rows:
            dst = bufs[n_buf][:n_rows * (src.shape[1] - g)].reshape(n_rows, src.shape[1] - g)
            _level(xp, src, dst, g)
            src, g, n_buf = dst, 2 * g, 1 - n_buf
        lo, hi = max(min_bins - first, 0), min(max_bins - first, n_rows - 1)
        block_max = src[lo:hi + 1].max(axis=0)
        if first_block:
            best[...] = block_max
            best_k[...] = k
            first_block = False
        else:  # strictly greater: the earliest block wins ties, as on the CPU
            wins = block_max > best
            xp.copyto(best, block_max, where=wins)
            xp.copyto(best_k, k, where=wins)  # a Python int: every cupy version takes it as a scalar
    return best, best_k


def best_sums(block: np.ndarray, n_rows: int, max_bins: int, min_bins: int, pad_value: float,
              factor: int = 1, xp: ModuleType | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The driver's tree search (`_sums.best_sums`) on the array module `xp` (None: cupy): per start channel the best tree path sum
    (float32) over drifts of both signs, the signed centre bin of the drift block holding it (int64),
    and the radius (bins) of a block. Results are numpy arrays.

    `best` matches the CPU kernel to float rounding; `centre` can differ where two drift blocks
    tie to within that rounding.
    """
    xp = require_cupy() if xp is None else xp
    to_host = getattr(xp, "asnumpy", np.asarray)
    width = block.shape[1] // factor
    step = max(n_rows - 1, 1)
    data = xp.asarray(block, dtype=np.float32)
    padded = xp.empty((n_rows, padded_width(width, n_rows, max_bins, 0)), dtype=np.float32)
    found = []
    fill_padded(data, padded, factor, pad_value)
    for reverse in (False, True):
        if reverse:
            reverse_band(padded, block.shape[0], width)
        found.append([to_host(a) for a in _search(xp, padded, width, max_bins, min_bins)])
    (best, block_k), (best_r, block_r) = found
    centre = np.empty(width, dtype=np.int64)
    join_signs(best, block_k, best_r, block_r, step, centre)
    return best, centre, step - step // 2
