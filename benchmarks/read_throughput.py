"""Read throughput per coarse channel: bl_reservoir.io against blimpy's Waterfall(f_start, f_stop).

Usage: python benchmarks/read_throughput.py [--coarse-channels 4] [--width 1048576] [--repeat 3]

Writes a synthetic .fil and .h5 (float32, 16 integrations), reads every coarse channel with both
readers on a warm page cache (alternating, median of --repeat), and prints MB/s for each and the ratio (ours / blimpy).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

from bl_reservoir.io import create_writer, open_observation
from bl_reservoir.synth import bl_header


def _write(path: Path, n_coarse: int, width: int) -> None:
    rng = np.random.default_rng(0)
    with create_writer(path, bl_header(n_coarse * width), 16) as writer:
        for cc in range(n_coarse):
            writer.write(cc * width, rng.random((16, width), dtype=np.float32))


def _ours(path: Path, cc: int) -> np.ndarray:
    with open_observation(path) as obs:
        return obs.coarse_channel(cc)


def _blimpy(path: Path, cc: int, width: int) -> np.ndarray:
    import blimpy

    with open_observation(path) as obs:
        freqs = obs.frequencies(cc * width, (cc + 1) * width)
    f_lo, f_hi = float(freqs.min()), float(freqs.max())
    return blimpy.Waterfall(str(path), f_start=f_lo, f_stop=f_hi).data


def _time_pair(ours, theirs, repeat: int) -> tuple[float, float, int]:
    """Median seconds of each reader, alternating them so both see the same cache and load."""
    t_ours, t_theirs, nbytes = [], [], 0
    for _ in range(repeat):
        for fn, times in ((ours, t_ours), (theirs, t_theirs)):
            t0 = time.perf_counter()
            nbytes = fn().nbytes
            times.append(time.perf_counter() - t0)
    return statistics.median(t_ours), statistics.median(t_theirs), nbytes


def _peak(fn) -> int:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coarse-channels", type=int, default=4)
    parser.add_argument("--width", type=int, default=1_048_576)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("blimpy").setLevel(logging.ERROR)
    one = 16 * args.width * 4
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.coarse_channels} coarse channels x {args.width} fine channels x 16 integrations, float32 "
              f"({one / 2**20:.0f} MiB per coarse channel)")
        print(f"{'file':>5} {'cc':>3} {'ours MB/s':>10} {'blimpy MB/s':>12} {'ratio':>7}")
        for ext in (".fil", ".h5"):
            path = Path(tmp) / f"bench{ext}"
            _write(path, args.coarse_channels, args.width)
            for cc in range(args.coarse_channels):  # warm the page cache, the allocator and imports
                _ours(path, cc), _blimpy(path, cc, args.width)
            ratios = []
            for cc in range(args.coarse_channels):
                t_ours, t_bl, nbytes = _time_pair(lambda: _ours(path, cc), lambda: _blimpy(path, cc, args.width),
                                                  args.repeat)
                ours, theirs = nbytes / t_ours / 1e6, nbytes / t_bl / 1e6
                ratios.append(ours / theirs)
                print(f"{ext:>5} {cc:>3} {ours:>10.0f} {theirs:>12.0f} {ours / theirs:>7.2f}")
            peak_ours = _peak(lambda: _ours(path, 1))
            peak_bl = _peak(lambda: _blimpy(path, 1, args.width))
            print(f"{ext:>5} min ratio {min(ratios):.2f}, median {statistics.median(ratios):.2f}; peak Python memory "
                  f"for one coarse channel: ours {peak_ours / one:.2f}x, blimpy {peak_bl / one:.2f}x of its data")


if __name__ == "__main__":
    main()
