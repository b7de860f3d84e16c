"""Read throughput per coarse channel: bl_reservoir.io against blimpy's Waterfall(f_start, f_stop).

Usage: python benchmarks/read_throughput.py [--coarse-channels 4] [--width 1048576] [--repeat 3]

Writes a synthetic .fil and .h5 (float32, 16 integrations), reads every coarse channel with both
readers on a warm page cache, each reader in its own fresh process reading the file front to back
as a search does (median of --repeat passes), and prints MB/s for each and the ratio (ours / blimpy).
Separate processes matter: a 64 MiB block freed by one reader changes the page-fault cost of the
next allocation, so interleaving the two readers in one process measures the allocator, not them.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
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


def _passes(reader: str, path: Path, n_coarse: int, width: int, repeat: int) -> None:
    """Child process: read every coarse channel `repeat` times; print MB/s per coarse channel and peak memory."""
    read = (lambda cc: _ours(path, cc)) if reader == "ours" else (lambda cc: _blimpy(path, cc, width))
    read(0)  # imports
    times: list[list[float]] = [[] for _ in range(n_coarse)]
    nbytes = 0
    for _ in range(repeat):
        for cc in range(n_coarse):
            t0 = time.perf_counter()
            nbytes = read(cc).nbytes
            times[cc].append(time.perf_counter() - t0)
    print(json.dumps({"mbps": [nbytes / statistics.median(t) / 1e6 for t in times], "peak": _peak(lambda: read(1))}))


def _run_reader(reader: str, path: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", reader, "--path", str(path), "--coarse-channels",
           str(args.coarse_channels), "--width", str(args.width), "--repeat", str(args.repeat)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--child", choices=["ours", "blimpy"], help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("blimpy").setLevel(logging.ERROR)
    if args.child:
        _passes(args.child, args.path, args.coarse_channels, args.width, args.repeat)
        return
    one = 16 * args.width * 4
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.coarse_channels} coarse channels x {args.width} fine channels x 16 integrations, float32 "
              f"({one / 2**20:.0f} MiB per coarse channel)")
        print(f"{'file':>5} {'cc':>3} {'ours MB/s':>10} {'blimpy MB/s':>12} {'ratio':>7}")
        for ext in (".fil", ".h5"):
            path = Path(tmp) / f"bench{ext}"
            _write(path, args.coarse_channels, args.width)
            path.read_bytes()  # warm the page cache for both readers
            mine, theirs = _run_reader("ours", path, args), _run_reader("blimpy", path, args)
            ratios = []
            for cc, (a, b) in enumerate(zip(mine["mbps"], theirs["mbps"])):
                ratios.append(a / b)
                print(f"{ext:>5} {cc:>3} {a:>10.0f} {b:>12.0f} {a / b:>7.2f}")
            peak_ours, peak_bl = mine["peak"], theirs["peak"]
            print(f"{ext:>5} min ratio {min(ratios):.2f}, median {statistics.median(ratios):.2f}; peak Python memory "
                  f"for one coarse channel: ours {peak_ours / one:.2f}x, blimpy {peak_bl / one:.2f}x of its data")


if __name__ == "__main__":
    main()
