"""Energy-detection kernels: pure functions over one coarse channel's `(n_time, W)` block.

The method is the original reservoir's, kept exactly: repair the DC spike, subtract a cubic
least-squares spline fit of the time-averaged spectrum, and run the D'Agostino-Pearson K^2
normality test on every window of channels. The speed comes from how it is computed:

- the spline is fitted through its normal equations, summed knot interval by knot interval
  from power sums taken in one numba pass (the same least-squares fit that
  `scipy.interpolate.splrep(x, y, t=knots)` finds, without its 1-million-row work arrays);
- the bandpass is never subtracted into a float64 copy of the block: kernels read the float32
  samples and subtract the float64 fit on the fly, which gives the very values of the
  original's `channel - fit`;
- central moments are summed once per block of `gcd(window, stride)` channels (128 by default)
  and each window merges its blocks (Chan/Pebay pairwise formulas), so a window that shares a
  block with its neighbour does not sum it again.

No I/O, no globals: every function takes and returns arrays.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

__all__ = ["bandpass_knots", "block_moments", "cleaned_stamps", "fit_bandpass", "normaltest_from_moments",
           "repair_dc", "window_starts", "window_statistics"]


def repair_dc(block: np.ndarray) -> np.ndarray:
    """Replace the two DC-spike columns around `W // 2` in place, as the original did; returns `block`.

    Column `dc` becomes the mean of columns `dc+1` and `dc-3`, column `dc-1` the mean of
    `dc+2` and `dc-2` (arithmetic in the block's dtype).
    """
    width = block.shape[-1]
    dc = width // 2
    if dc < 3 or dc + 2 >= width:
        return block  # too narrow to have the spike's neighbours; nothing to repair
    block[..., dc] = (block[..., dc + 1] + block[..., dc - 3]) / 2
    block[..., dc - 1] = (block[..., dc + 2] + block[..., dc - 2]) / 2
    return block


def bandpass_knots(width: int, n_knots: int = 16) -> np.ndarray:
    """Interior knots (fine-channel index) of the bandpass spline: `arange(0, W, W // n_knots + 1)[1:]`."""
    if n_knots < 1:
        raise ValueError(f"n_knots must be >= 1, got {n_knots}")
    return np.arange(0, width, width // n_knots + 1)[1:].astype(np.float64)


@numba.njit(cache=True, nogil=True)
def _cubic_basis(knots, interval, x, out, left, right):  # pragma: no cover - compiled
    # de Boor's BSPLVB: the 4 non-zero cubic B-splines at x, B[interval-3 .. interval];
    # `left` and `right` are scratch arrays of 4 (no allocation per sample)
    out[0] = 1.0
    for j in range(1, 4):
        left[j] = x - knots[interval + 1 - j]
        right[j] = knots[interval + j] - x
        saved = 0.0
        for r in range(j):
            temp = out[r] / (right[r + 1] + left[j - r])
            out[r] = saved + right[r + 1] * temp
            saved = left[j - r] * temp
        out[j] = saved


def _interval_polynomials(knots: np.ndarray) -> np.ndarray:
    """`P[l, a, p]`: on knot interval l, B-spline `l - 3 + a` equals `sum_p P[l, a, p] * u**p`,
    with `u = (x - knots[l]) / (knots[l + 1] - knots[l])` in [0, 1]."""
    n_coef = knots.size - 4
    nodes = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    inverse = np.linalg.inv(np.vander(nodes, 4, increasing=True))
    table = np.zeros((knots.size, 4, 4))
    basis, left, right = np.empty(4), np.empty(4), np.empty(4)
    for interval in range(3, n_coef):
        lo, hi = knots[interval], knots[interval + 1]
        values = np.empty((4, 4))
        for row, u in enumerate(nodes):
            _cubic_basis(knots, interval, lo + u * (hi - lo), basis, left, right)
            values[row] = basis
        table[interval] = (inverse @ values).T
    return table


@numba.njit(cache=True, nogil=True)
def _power_sums(knots, n_coef, spectrum):  # pragma: no cover - compiled
    # per knot interval: sums of u**k (k = 0..6) and of y * u**p (p = 0..3)
    upow = np.zeros((knots.size, 7))
    ypow = np.zeros((knots.size, 4))
    width = spectrum.size
    for interval in range(3, n_coef):
        lo, hi = knots[interval], knots[interval + 1]
        first = int(math.ceil(lo))
        stop = int(math.ceil(hi)) if interval < n_coef - 1 else width  # the last interval is closed
        scale = 1.0 / (hi - lo)
        u0 = u1 = u2 = u3 = u4 = u5 = u6 = 0.0
        y0 = y1 = y2 = y3 = 0.0
        for i in range(first, min(stop, width)):
            u = (i - lo) * scale
            uu = u * u
            uuu = uu * u
            y = np.float64(spectrum[i])
            u0 += 1.0
            u1 += u
            u2 += uu
            u3 += uuu
            u4 += uu * uu
            u5 += uu * uuu
            u6 += uuu * uuu
            y0 += y
            y1 += y * u
            y2 += y * uu
            y3 += y * uuu
        upow[interval, 0] = u0
        upow[interval, 1] = u1
        upow[interval, 2] = u2
        upow[interval, 3] = u3
        upow[interval, 4] = u4
        upow[interval, 5] = u5
        upow[interval, 6] = u6
        ypow[interval, 0] = y0
        ypow[interval, 1] = y1
        ypow[interval, 2] = y2
        ypow[interval, 3] = y3
    return upow, ypow


@numba.njit(cache=True, nogil=True)
def _evaluate(knots, n_coef, local, width):  # pragma: no cover - compiled
    # `local[l, p]`: the fitted spline on interval l as a cubic in u
    out = np.empty(width)
    for interval in range(3, n_coef):
        lo, hi = knots[interval], knots[interval + 1]
        first = int(math.ceil(lo))
        stop = int(math.ceil(hi)) if interval < n_coef - 1 else width
        scale = 1.0 / (hi - lo)
        c0, c1, c2, c3 = local[interval, 0], local[interval, 1], local[interval, 2], local[interval, 3]
        for i in range(first, min(stop, width)):
            u = (i - lo) * scale
            out[i] = c0 + u * (c1 + u * (c2 + u * c3))
    return out


def fit_bandpass(spectrum: np.ndarray, n_knots: int = 16) -> np.ndarray:
    """float64 `(W,)` cubic least-squares spline fit of a time-averaged spectrum.

    Interior knots from `bandpass_knots`, end knots at channels 0 and W-1: the fit that
    `splev(x, splrep(arange(W), spectrum, t=knots))` gives, to round-off.
    """
    spectrum = np.ascontiguousarray(spectrum)
    width = spectrum.size
    interior = bandpass_knots(width, n_knots)
    if width < 8 or interior.size + 4 > width:
        raise ValueError(f"{width} channels are too few for a {n_knots}-knot cubic spline")
    knots = np.concatenate([np.zeros(4), interior, np.full(4, float(width - 1))])
    n_coef = knots.size - 4
    poly = _interval_polynomials(knots)
    upow, ypow = _power_sums(knots, n_coef, spectrum)
    # normal equations, summed interval by interval from the power sums
    gram = np.zeros((n_coef, n_coef))
    rhs = np.zeros(n_coef)
    hankel = np.add.outer(np.arange(4), np.arange(4))
    for interval in range(3, n_coef):
        p = poly[interval]
        rows = slice(interval - 3, interval + 1)
        gram[rows, rows] += p @ upow[interval][hankel] @ p.T
        rhs[rows] += p @ ypow[interval]
    coef = np.linalg.solve(gram, rhs)
    local = np.zeros((knots.size, 4))
    for interval in range(3, n_coef):
        local[interval] = coef[interval - 3:interval + 1] @ poly[interval]
    return _evaluate(knots, n_coef, local, width)


# One thread on purpose: jobs run side by side on a worker (BL@Scale), and a threaded kernel
# would oversubscribe the cores and is unsafe after fork with GNU OpenMP. `reassoc` lets the
# sums vectorise; it only reorders float64 additions.
@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def block_moments(block, fit, block_width):  # pragma: no cover - compiled
    """Per block of `block_width` channels: mean and central sums of powers 2, 3, 4 of `block - fit`.

    Returns float64 arrays `(mean, s2, s3, s4)` of length `W // block_width`; samples are
    float64(block) - fit, accumulated in float64 with a two-pass mean per block.
    """
    n_time, width = block.shape
    n_blocks = width // block_width
    mean = np.empty(n_blocks)
    s2 = np.empty(n_blocks)
    s3 = np.empty(n_blocks)
    s4 = np.empty(n_blocks)
    count = n_time * block_width
    for b in range(n_blocks):
        c0 = b * block_width
        total = 0.0
        for t in range(n_time):
            for c in range(c0, c0 + block_width):
                total += np.float64(block[t, c]) - fit[c]
        mu = total / count
        a2 = 0.0
        a3 = 0.0
        a4 = 0.0
        for t in range(n_time):
            for c in range(c0, c0 + block_width):
                d = (np.float64(block[t, c]) - fit[c]) - mu
                d2 = d * d
                a2 += d2
                a3 += d2 * d
                a4 += d2 * d2
        mean[b] = mu
        s2[b] = a2
        s3[b] = a3
        s4[b] = a4
    return mean, s2, s3, s4


def window_starts(width: int, window: int = 256, stride: int = 128) -> np.ndarray:
    """First channel of every window that fits in `width` channels: `range(0, W - window + 1, stride)`.

    For W a multiple of 128 (all BL widths) this is the original `range(0, W - 128, 128)`.
    """
    return np.arange(0, max(width - window + 1, 0), stride, dtype=np.int64)


def _merge(n_a, mean_a, s2_a, s3_a, s4_a, n_b, mean_b, s2_b, s3_b, s4_b):
    # Pairwise update of central sums (Chan et al. 1979; Pebay 2008), exact in exact arithmetic.
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    s2 = s2_a + s2_b + delta**2 * n_a * n_b / n
    s3 = (s3_a + s3_b + delta**3 * n_a * n_b * (n_a - n_b) / n**2
          + 3.0 * delta * (n_a * s2_b - n_b * s2_a) / n)
    s4 = (s4_a + s4_b + delta**4 * n_a * n_b * (n_a**2 - n_a * n_b + n_b**2) / n**3
          + 6.0 * delta**2 * (n_a**2 * s2_b + n_b**2 * s2_a) / n**2
          + 4.0 * delta * (n_a * s3_b - n_b * s3_a) / n)
    return n, mean, s2, s3, s4


def normaltest_from_moments(n: float, mean: np.ndarray, m2: np.ndarray, m3: np.ndarray,
                            m4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D'Agostino-Pearson K^2 and its chi^2(2) p-value from central moments of samples of size `n`.

    The formulas of `scipy.stats.normaltest` (skewtest + kurtosistest, biased moments); a
    window with no spread gives NaN, as scipy does.
    """
    eps = np.finfo(np.float64).eps
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        flat = m2 <= (eps * mean) ** 2
        skew = np.where(flat, np.nan, m3 / m2**1.5)
        kurt = np.where(flat, np.nan, m4 / m2**2)
        # skewtest
        y = skew * math.sqrt(((n + 1) * (n + 3)) / (6.0 * (n - 2)))
        beta2 = 3.0 * (n**2 + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
        w2 = -1 + math.sqrt(2 * (beta2 - 1))
        delta = 1 / math.sqrt(0.5 * math.log(w2))
        alpha = math.sqrt(2.0 / (w2 - 1))
        y = np.where(y == 0, 1.0, y)
        z_skew = delta * np.log(y / alpha + np.sqrt((y / alpha) ** 2 + 1))
        # kurtosistest
        e = 3.0 * (n - 1) / (n + 1)
        var_b2 = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))
        x = (kurt - e) / math.sqrt(var_b2)
        sqrt_beta1 = (6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9))
                      * math.sqrt((6.0 * (n + 3) * (n + 5)) / (n * (n - 2) * (n - 3))))
        a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + math.sqrt(1 + 4.0 / sqrt_beta1**2))
        term1 = 1 - 2 / (9.0 * a)
        denom = 1 + x * math.sqrt(2 / (a - 4.0))
        term2 = np.sign(denom) * np.where(denom == 0.0, np.nan, ((1 - 2.0 / a) / np.abs(denom)) ** (1 / 3))
        z_kurt = (term1 - term2) / math.sqrt(2 / (9.0 * a))
        statistic = z_skew * z_skew + z_kurt * z_kurt
    return statistic, special.chdtrc(2, statistic)


def window_statistics(block: np.ndarray, fit: np.ndarray | None = None, *, window: int = 256,
                      stride: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K^2 statistic and p-value of every window of `block - fit`, all windows at once.

    `block` is float32 `(n_time, W)`, `fit` float64 `(W,)` (None: zeros). Returns
    `(starts, statistic, pvalue)`: window start channels (see `window_starts`) and float64
    values equal to `scipy.stats.normaltest` on each window's flattened samples.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    n_time, width = block.shape
    fit = np.zeros(width) if fit is None else np.ascontiguousarray(fit, dtype=np.float64)
    if fit.shape != (width,):
        raise ValueError(f"fit has shape {fit.shape}, expected ({width},)")
    starts = window_starts(width, window, stride)
    if starts.size == 0:
        empty = np.empty(0)
        return starts, empty, empty.copy()
    unit = math.gcd(window, stride)
    mean_b, s2_b, s3_b, s4_b = block_moments(np.ascontiguousarray(block), fit, unit)
    first = starts // unit
    n_unit = float(n_time * unit)
    n, mean, s2, s3, s4 = n_unit, mean_b[first], s2_b[first], s3_b[first], s4_b[first]
    for k in range(1, window // unit):
        j = first + k
        n, mean, s2, s3, s4 = _merge(n, mean, s2, s3, s4, n_unit, mean_b[j], s2_b[j], s3_b[j], s4_b[j])
    statistic, pvalue = normaltest_from_moments(n, mean, s2 / n, s3 / n, s4 / n)
    return starts, statistic, pvalue


def cleaned_stamps(block: np.ndarray, fit: np.ndarray, starts: np.ndarray, window: int = 256) -> np.ndarray:
    """float32 `(len(starts), n_time, window)` stamps of `block - fit` at the given start channels."""
    out = np.empty((len(starts), block.shape[0], window), dtype=np.float32)
    for row, start in enumerate(np.asarray(starts, dtype=np.int64)):
        out[row] = block[:, start:start + window] - fit[start:start + window]
    return out
