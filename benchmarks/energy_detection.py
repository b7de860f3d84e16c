"""Energy detection per coarse channel: ours against the plain per-window scipy method.

Usage: python benchmarks/energy_detection.py [--width 1048576] [--sample-windows 400] [--workdir DIR]

Makes (with synth) a 1- and a 4-coarse-channel `.h5` of full BL width (2**20 fine channels, 16
integrations, 4 signals), then, in one run:

- reference: per coarse channel, the original method written plainly (DC repair, `splrep` /
  `splev` bandpass, `channel - fit` in float64, `scipy.stats.normaltest` on each window's
  flattened samples). `normaltest` is timed on `--sample-windows` evenly spread windows and
  extrapolated to all windows of the coarse channel (the output says so);
- ours: `detect_block` on the same in-memory coarse channel (DC repair, spline, K^2 of every
  window, hit selection, stamps), and the whole script (`preprocess_fine.run`: read, detect,
  write the results folder) on each file, divided by its number of coarse channels;
- the ratio of the two times per coarse channel, the largest relative difference of our
  statistics from scipy's on the sampled windows, and our peak memory while the script runs on
  the 4-coarse-channel file (a subprocess: tracemalloc peak of Python/numpy allocations, and the
  growth of the resident set over its level after imports), relative to one coarse channel's
  float32 data.

Both run on one core: the kernels are single-threaded by design (parallelism comes from running
files side by side), and the reference is one process.
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
from pathlib import Path

import numpy as np

_MEMORY_PROBE = r"""
import json, resource, sys, tracemalloc
import numpy as np
from bl_reservoir.energy_detection import preprocess_fine
from bl_reservoir.energy_detection.detect import Parameters, detect_block

def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])

detect_block(np.random.default_rng(0).random((16, 4096), dtype=np.float32))  # load the compiled kernels
try:  # reset the peak-RSS mark so that imports do not count
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
base = rss_kib("VmRSS:")
tracemalloc.start()
preprocess_fine.run(sys.argv[1], sys.argv[2], Parameters(best_per_band=4))
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"tracemalloc_peak": peak, "rss_growth": (rss_kib("VmHWM:") - base) * 1024}))
"""


def _make_files(workdir: Path, width: int) -> dict[int, Path]:
    from bl_reservoir.synth import make_observation

    files = {}
    for n_coarse in (1, 4):
        path = workdir / f"bench_{n_coarse}cc.h5"
        if not path.exists():
            make_observation(path, n_coarse_channels=n_coarse, coarse_channel_width=width, n_signals=4 * n_coarse,
                             snr_range=(50.0, 200.0), seed=n_coarse)
        files[n_coarse] = path
    return files


def _reference(block: np.ndarray, sample: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(seconds to clean the block, seconds per window of normaltest, statistics of the sampled windows)."""
    from _energy_reference import plain_clean
    from scipy import stats

    t0 = time.perf_counter()
    cleaned = plain_clean(block.copy())
    t1 = time.perf_counter()
    values = []
    for i in sample:
        values.append(stats.normaltest(cleaned[:, i:i + 256].flatten()).statistic)
    t2 = time.perf_counter()
    return t1 - t0, (t2 - t1) / len(sample), np.array(values)


def _ours(block: np.ndarray, repeat: int = 3) -> tuple[float, np.ndarray, np.ndarray]:
    """Median seconds of `detect_block` on a fresh copy of the block, and every window's K^2."""
    from bl_reservoir.energy_detection import fit_bandpass, repair_dc, window_statistics
    from bl_reservoir.energy_detection.detect import Parameters, detect_block

    times = []
    for _ in range(repeat):
        data = block.copy()
        t0 = time.perf_counter()
        detect_block(data, Parameters())
        times.append(time.perf_counter() - t0)
    data = repair_dc(block.copy())
    starts, statistic, _ = window_statistics(data, fit_bandpass(data.mean(axis=0)))
    return statistics.median(times), starts, statistic


def _script_seconds(path: Path, out: Path) -> float:
    from bl_reservoir.energy_detection import preprocess_fine

    t0 = time.perf_counter()
    preprocess_fine.run(path, out)
    return time.perf_counter() - t0


def _memory(path: Path, out: Path) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path), str(out)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1_048_576, help="fine channels per coarse channel")
    parser.add_argument("--sample-windows", type=int, default=400, help="windows timed with scipy per coarse channel")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the synthetic files here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from bl_reservoir.energy_detection import window_starts
    from bl_reservoir.io import open_observation

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        files = _make_files(workdir, args.width)
        print(f"synthetic files ready in {time.perf_counter() - t0:.1f} s: "
              + ", ".join(f"{p.name} ({p.stat().st_size / 2**20:.0f} MiB)" for p in files.values()))
        n_windows = window_starts(args.width).size
        sample = window_starts(args.width)[np.linspace(0, n_windows - 1, args.sample_windows).astype(int)]
        block_bytes = 16 * args.width * 4
        _ours(np.random.default_rng(0).random((16, 4096), dtype=np.float32))  # compile / load kernels first

        ref_cc, ours_cc, worst = [], [], 0.0
        with open_observation(files[4]) as obs:
            for cc in range(obs.n_coarse_channels):
                block = obs.coarse_channel(cc)
                prep, per_window, ref_values = _reference(block, sample)
                ref_cc.append(prep + per_window * n_windows)
                seconds, starts, ours_values = _ours(block)
                ours_cc.append(seconds)
                mine = ours_values[np.searchsorted(starts, sample)]
                worst = max(worst, float(np.max(np.abs(mine - ref_values) / np.abs(ref_values))))
                print(f"coarse channel {cc}: reference {ref_cc[-1]:.3f} s (clean {prep:.3f} s + {n_windows} windows x "
                      f"{per_window * 1e3:.3f} ms, timed on {len(sample)} windows and extrapolated), "
                      f"ours {seconds * 1e3:.1f} ms")
        _script_seconds(files[1], workdir / "out_warmup")  # first-use imports (pyarrow, tqdm) off the clock
        script = {n: _script_seconds(path, workdir / f"out_{n}cc") / n for n, path in files.items()}
        memory = _memory(files[4], workdir / "out_mem")

    ref, ours = statistics.median(ref_cc), statistics.median(ours_cc)
    print()
    print(f"one core each: our kernels are single-threaded; reference: scipy {__import__('scipy').__version__}, "
          "one process")
    print(f"reference (extrapolated per coarse channel): {ref:.3f} s")
    paired = statistics.median(r / o for r, o in zip(ref_cc, ours_cc))
    print(f"ours, detect_block on the in-memory block:   {ours * 1e3:.1f} ms   ratio {ref / ours:.0f}x "
          f"(median of per-coarse-channel ratios, each timed back to back: {paired:.0f}x)")
    for n, seconds in script.items():
        print(f"ours, whole script on {n} coarse channel(s): {seconds * 1e3:.1f} ms per coarse channel "
              f"(read + detect + write)   ratio {ref / seconds:.0f}x")
    print(f"largest relative difference of K^2 from scipy on the sampled windows: {worst:.2e}")
    print(f"peak memory of the script on 4 coarse channels: tracemalloc {memory['tracemalloc_peak'] / 2**20:.0f} MiB "
          f"= {memory['tracemalloc_peak'] / block_bytes:.2f}x one coarse channel "
          f"({block_bytes / 2**20:.0f} MiB); resident growth {memory['rss_growth'] / 2**20:.0f} MiB "
          f"= {memory['rss_growth'] / block_bytes:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
