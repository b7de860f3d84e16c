"""Taylor-tree de-Doppler kernels: pure functions over arrays, in numba (`cache=True`; those called from
Python also compiled ahead of time, `_aot`).

The tree sums `P = 2**m` spectra along every drift of 0..P-1 channels over P-1 steps in
`P * log2(P)` additions per channel instead of `P * P`. Its paths are staircases, not straight
lines: at every row a Taylor path is within one channel of the straight path
`round(s * i / (P - 1))` (see `taylor_path`; the tolerance is asserted in the tests).

Inner loops live in tiny helpers over 1-D slices (`_add`, `_keep_max`) because numba vectorises
those into SIMD code, while the same loop written with 2-D indices stays scalar (5x slower).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bl_reservoir.dedoppler._aot import exported, njit


def taylor_path(n_rows: int) -> np.ndarray:
    """int array (n_rows, n_rows): channel offset at row i of the tree path with drift s, `[s, i]`."""
    if n_rows < 1 or n_rows & (n_rows - 1):
        raise ValueError(f"n_rows must be a power of two, got {n_rows}")
    paths = np.zeros((1, 1), dtype=np.int64)
    g = 1
    while g < n_rows:
        out = np.zeros((2 * g, 2 * g), dtype=np.int64)
        for s in range(2 * g):
            h = s // 2
            out[s, :g] = paths[h]
            out[s, g:] = paths[h] + (s - h)
        paths, g = out, 2 * g
    return paths


@njit(cache=True, nogil=True, fastmath=True)
def _add(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    for j in range(out.shape[0]):
        out[j] = a[j] + b[j]


@njit(cache=True, nogil=True, fastmath=True)
def _first_sum(best: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    for j in range(best.shape[0]):
        best[j] = a[j] + b[j]


@njit(cache=True, nogil=True, fastmath=True)
def _keep_max(best: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """The last tree merge fused with the running maximum over drifts: `a + b` is never stored.

    Written as `best += max(v - best, 0)`: numba vectorises this form, not `max(best, v)` (7x slower).
    """
    for j in range(best.shape[0]):
        best[j] += max(a[j] + b[j] - best[j], np.float32(0.0))


@njit(cache=True, nogil=True)
def _merge_block(best: np.ndarray, best_block: np.ndarray, block_max: np.ndarray, k: int, first: bool) -> None:
    """Fold one drift block's maxima into the running maxima, remembering the winning block."""
    for j in range(best.shape[0]):  # block_max may be longer than best: only the first len(best) count
        if first or block_max[j] > best[j]:
            best[j] = block_max[j]
            best_block[j] = k


@njit(cache=True, nogil=True)
def _tree_levels(src: np.ndarray, dst: np.ndarray, first_group: int, last_group: int = 0) -> np.ndarray:
    """Merge groups of `first_group` rows up to `last_group` (default all rows); return the buffer holding them.

    Row s of a merged group of 2g rows is the path of drift s: the first half follows drift s//2,
    the second half starts s - s//2 channels further on. Columns past the end keep partial sums.
    """
    n_rows, width = src.shape
    g = first_group
    while g < (last_group or n_rows):
        for base in range(0, n_rows, 2 * g):
            for s in range(2 * g):
                h = s // 2
                shift = s - h
                stop = width - shift
                _add(dst[base + s, :stop], src[base + h, :stop], src[base + g + h, shift:])
                dst[base + s, stop:] = src[base + h, stop:]
        src, dst = dst, src
        g *= 2
    return src


@njit(cache=True, nogil=True)
def taylor_tree(data: np.ndarray) -> np.ndarray:
    """float32 (P, W) -> (P, W): `[s, j]` = sum over rows of `data` along the Taylor path of drift s from column j.

    P must be a power of two. Paths running past the last column add nothing from there on.
    """
    n_rows, width = data.shape
    buf = np.zeros((n_rows, width + n_rows), dtype=np.float32)
    buf[:, :width] = data
    tmp = np.empty_like(buf)
    return _tree_levels(buf, tmp, 1)[:, :width].copy()


@exported("void(float32[:, ::1], float32[:, :], int64)")
@njit(cache=True, nogil=True, fastmath=True)
def sum_channels(block: np.ndarray, out: np.ndarray, factor: int) -> None:
    """`out[i, j]` <- the sum of the `factor` channels `block[i, factor*j : factor*(j+1)]`, at memory speed."""
    for i in range(out.shape[0]):
        row, target = block[i], out[i]
        if factor == 2:  # the coarse stage: written out, so that it vectorises
            for j in range(target.shape[0]):
                target[j] = row[2 * j] + row[2 * j + 1]
        else:
            for j in range(target.shape[0]):
                acc = row[factor * j]
                for u in range(1, factor):
                    acc += row[factor * j + u]
                target[j] = acc


@exported("void(float32[:, :])")
@njit(cache=True, nogil=True)
def reverse_channels(data: np.ndarray) -> None:
    """Reverse each row of `data` (P, W) in place: the negative drifts are the positive ones of the mirror."""
    width = data.shape[1]
    for i in range(data.shape[0]):
        row = data[i]
        for j in range(width // 2):
            row[j], row[width - 1 - j] = row[width - 1 - j], row[j]


@exported("void(float32[::1], int32[::1], float32[::1], int32[::1], int64, int64[::1])")
@njit(cache=True, nogil=True)
def join_signs(best: np.ndarray, block_k: np.ndarray, best_r: np.ndarray, block_r: np.ndarray, step: int,
               centre: np.ndarray) -> None:
    """Per channel the better of the positive-drift search (`best`, `block_k`) and the negative one
    (`best_r`, `block_r`, in mirrored channel order), positive winning ties: `best` <- the larger sum,
    `centre` <- the signed centre bin of the drift block holding it."""
    last = best.shape[0] - 1
    for j in range(best.shape[0]):
        if best_r[last - j] > best[j]:
            best[j] = best_r[last - j]
            centre[j] = -(block_r[last - j] * step + step // 2)
        else:
            centre[j] = block_k[j] * step + step // 2


def padded_width(width: int, n_rows: int, max_bins: int, chunk: int) -> int:
    """Columns `drift_search` reads: the band plus room for the largest pre-shift and tree span."""
    return width + chunk + 2 * n_rows + max_bins + 1


def fill_padded(pieces, padded, factor: int, pad_value: float) -> None:
    """`padded` <- the `pieces` side by side (one block, or a coarse channel and its neighbours' channels) with
    every `factor` adjacent channels summed; zero rows past n_time, `pad_value` past the band. Each piece
    holds a multiple of `factor` channels. Numpy arrays, or cupy arrays on the GPU path."""
    pieces = pieces if isinstance(pieces, (list, tuple)) else (pieces,)
    n_time, col = pieces[0].shape[0], 0
    for block in pieces:
        width = block.shape[1] // factor
        target = padded[:n_time, col:col + width]
        if width == 0:
            continue
        if factor == 1:
            target[...] = block
        elif isinstance(block, np.ndarray):
            sum_channels(block, target, factor)
        else:
            target[...] = block[:, :width * factor].reshape(n_time, width, factor).sum(axis=2)
        col += width
    padded[:n_time, col:] = pad_value
    padded[n_time:] = 0.0


def reverse_band(padded, n_time: int, width: int) -> None:
    """Reverse the channels of the band in `padded`: the negative drifts are the positive ones of the mirror."""
    target = padded[:n_time, :width]
    if isinstance(target, np.ndarray):
        reverse_channels(target)
    else:
        target[...] = target[:, ::-1].copy()  # a copy: cupy does not guard overlapping assignments


@njit(cache=True, nogil=True)
def skip_block(first: int, n_rows: int, min_bins: int, max_bins: int) -> bool:
    """Whether drift block `first`..`first + n_rows - 1` adds nothing: none of its drifts is in min..max, or only
    its last, which the next block searches as its first (a whole tree for one drift, twice)."""
    last = first + n_rows - 1
    return last < min_bins or first > max_bins or (n_rows > 1 and last == min_bins)


@exported("void(float32[:, ::1], int64, int64, int64, float32[::1], int32[::1], int64, int64, int64)")
@njit(cache=True, nogil=True)
def _search_chunks(padded: np.ndarray, width: int, max_bins: int, min_bins: int, best: np.ndarray,
                   best_block: np.ndarray, chunk: int, first_chunk: int, stop_chunk: int) -> None:
    n_rows = padded.shape[0]
    step = max(n_rows - 1, 1)
    span = chunk + n_rows
    buf = np.empty((n_rows, span), dtype=np.float32)
    tmp = np.empty_like(buf)
    target = np.empty(chunk, dtype=np.float32)
    for n_chunk in range(first_chunk, stop_chunk):
        c0 = n_chunk * chunk
        n_cols = min(chunk, width - c0)
        first_block = True
        for k in range(max_bins // step + 1):
            first = k * step
            if skip_block(first, n_rows, min_bins, max_bins):
                continue
            if n_rows == 1:  # a single spectrum: every drift is the same sum
                tmp[0, :] = 0.0
                _first_sum(target[:n_cols], padded[0, c0:c0 + n_cols], tmp[0])
                _merge_block(best[c0:c0 + n_cols], best_block[c0:c0 + n_cols], target, k, first_block)
                first_block = False
                continue
            if n_rows == 2:  # level one is the whole tree: merge it straight into the running maximum
                fresh = True
                for s in range(2):
                    if min_bins <= first + s <= max_bins:
                        b0 = c0 + k + s
                        if fresh:
                            _first_sum(target[:n_cols], padded[0, c0:c0 + n_cols], padded[1, b0:b0 + n_cols])
                            fresh = False
                        else:
                            _keep_max(target[:n_cols], padded[0, c0:c0 + n_cols], padded[1, b0:b0 + n_cols])
                _merge_block(best[c0:c0 + n_cols], best_block[c0:c0 + n_cols], target, k, first_block)
                first_block = False
                continue
            # level one straight from the pre-shifted input: saves a copy pass
            for q in range(0, n_rows, 2):
                a0 = c0 + k * q
                b0 = c0 + k * (q + 1)
                _add(buf[q], padded[q, a0:a0 + span], padded[q + 1, b0:b0 + span])
                _add(buf[q + 1], padded[q, a0:a0 + span], padded[q + 1, b0 + 1:b0 + 1 + span])
            half = n_rows // 2
            out = _tree_levels(buf, tmp, 2, half) if n_rows > 2 else buf
            fresh = True
            for s in range(n_rows):  # the last merge, straight into the running maximum
                bins = first + s
                if min_bins <= bins <= max_bins:
                    h = s // 2
                    shift = s - h
                    if fresh:
                        _first_sum(target[:n_cols], out[h, :n_cols], out[half + h, shift:shift + n_cols])
                        fresh = False
                    else:
                        _keep_max(target[:n_cols], out[h, :n_cols], out[half + h, shift:shift + n_cols])
            _merge_block(best[c0:c0 + n_cols], best_block[c0:c0 + n_cols], target, k, first_block)
            first_block = False


def drift_search(padded: np.ndarray, width: int, max_bins: int, min_bins: int,
                 best: np.ndarray, best_block: np.ndarray, chunk: int = 4096, threads: int = 1) -> None:
    """Write to `best` (W,) the largest path sum of each start channel over drifts of min..max bins,
    and to `best_block` (W,) the drift block k that holds it (drift bins k*(P-1) .. k*(P-1)+P-1).

    `padded` is (P, padded_width(...)) float32, P a power of two: the spectra, then zero rows up
    to P, and past column `width` a neutral value. A drift of b bins moves b channels over P - 1
    steps; drifts are searched in blocks of P - 1 bins, block k pre-shifting row i by k * i
    channels (exact straight lines) before the tree adds the last 0..P-1 channels, in chunks of
    `chunk` columns that stay in cache. Only the winning block is kept (an argmax over every
    drift would stop the inner loop vectorising); `refine` recovers the drift where it matters.
    With `threads` > 1 the chunks are split into that many runs on threads (the kernel releases
    the GIL; chunks own disjoint columns of `best`).
    """
    n_chunks = -(-width // chunk)
    bounds = np.linspace(0, n_chunks, max(1, min(threads, n_chunks)) + 1).astype(int).tolist()
    if len(bounds) == 2:
        _search_chunks(padded, width, max_bins, min_bins, best, best_block, chunk, 0, n_chunks)
        return
    with ThreadPoolExecutor(len(bounds) - 1, thread_name_prefix="drift-search") as pool:
        list(pool.map(lambda lo, hi: _search_chunks(padded, width, max_bins, min_bins, best, best_block, chunk, lo, hi),
                      bounds[:-1], bounds[1:]))
