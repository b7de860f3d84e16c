"""Benchmark: the cadence event search against turboSETI 2.3.2's `find_events`, on the same six `.dat` files.

    .venv/bin/python benchmarks/events.py [--hits 10000] [--events 5] [--repeat 3] [--out DIR]

Writes an ABACAD cadence of dedoppler results (six folders, each with `<obs>.dat` and a manifest,
as a bucket holds them), each `.dat` with `--hits` random hits over 64 coarse channels (~187 MHz)
plus `--events` signals drifting through all three ONs. Each side runs in its own process: ours
reads the six results folders (`load_cadence`) and runs `find_events` at filter threshold 3;
turboSETI (its own venv) runs `find_events` on the six `.dat` files. Both use an SNR cut of 10.
Prints wall time (best of --repeat), peak RSS, the events each found, and the ratio.

The event counts differ where hits are dense: turboSETI drops an event when the Top_Hit_# of its
first hit in some ON was already taken by another event's hit in any file (hit numbers are per
file, so unrelated hits collide). The last line runs turboSETI once more with that check off
(`not_yet_seen` always true): it then finds exactly our events, and the script exits 0 only then.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _turboseti import ensure_turboseti

from bl_reservoir.dedoppler.datfile import write_dat
from bl_reservoir.synth import COARSE_WIDTH, FOFF_HZ, N_TIME, TSAMP, bl_header

N_COARSE = 64
SLEW_S = 30.0
OURS = """
import sys, time
from bl_reservoir.dedoppler.events import find_events, load_cadence
import pyarrow  # noqa: F401  (imports stay outside the timing, as turboSETI's do)
t = time.perf_counter()
events = find_events(load_cadence(sys.argv[1:]), filter_threshold=3, snr_cut=10)
print("SECONDS", time.perf_counter() - t)
print("EVENTS", events["Hit_ID"].nunique() if len(events) else 0)
print("PEAK_RSS_KB", next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""
TURBOSETI = """
import contextlib, importlib, io, os, sys, time
find_event = importlib.import_module("turbo_seti.find_event.find_event")
if os.environ.get("NO_TOPHIT_DEDUPE"):
    find_event.not_yet_seen = lambda seen, number: True
find_events = find_event.find_events
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    events = find_events(sys.argv[1:], SNR_cut=10, check_zero_drift=False, filter_threshold=3, on_off_first="ON")
print("SECONDS", time.perf_counter() - t)
print("EVENTS", 0 if events is None or not len(events) else events["Hit_ID"].nunique())
print("PEAK_RSS_KB", next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def make_cadence(root: Path, n_hits: int, n_events: int, seed: int) -> list[Path]:
    """Six results folders, ON first; returns their paths."""
    rng = np.random.default_rng(seed)
    n_chans = N_COARSE * COARSE_WIDTH
    obs_s = N_TIME * TSAMP
    planted_index = rng.choice(n_chans - 10_000, n_events, replace=False) + 5000
    planted_drift = rng.uniform(0.2, 2.0, n_events) * rng.choice([-1, 1], n_events)
    folders = []
    for k in range(6):
        on = k % 2 == 0
        source = "TARGET" if on else f"OFF_{k // 2}"
        elapsed = k * (obs_s + SLEW_S)
        header = bl_header(n_chans, source_name=source, tstart=60000.0 + elapsed / 86400.0)
        index = rng.integers(0, n_chans, n_hits)
        drift = np.round(rng.uniform(-4, 4, n_hits), 4)
        if on:   # the events: where each planted signal's drift has carried it by this file
            index = np.concatenate([index, planted_index + np.round(planted_drift * elapsed / FOFF_HZ).astype(int)])
            drift = np.concatenate([drift, planted_drift])
        order = np.argsort(index, kind="stable")
        index, drift = index[order], drift[order]
        hits = pd.DataFrame({"index": index, "freqs": header["fch1"] + header["foff"] * index,
                             "coarse_channel": index // COARSE_WIDTH, "drift_rate": drift,
                             "snr": rng.uniform(10.5, 50, len(index)), "channel_in_coarse": index % COARSE_WIDTH,
                             "n_candidates": 1})
        name = f"cadence_{k}_{'ON' if on else 'OFF'}_{source}"
        folder = root / name / "dedoppler" / "search"
        folder.mkdir(parents=True)
        write_dat(folder / f"{name}.dat", header, hits, n_time=N_TIME, max_drift=4.0, window_channels=2 * 129)
        (folder / "manifest.json").write_text(json.dumps({"schema": 1, "input": {"uri": f"/data/{name}.h5"}}))
        folders.append(folder)
    return folders


def _run(python: str, code: str, args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode:
        raise SystemExit(f"{python}: failed:\n{proc.stderr[-3000:]}")
    return {line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines() if line.split()
            and line.split()[0] in ("SECONDS", "EVENTS", "PEAK_RSS_KB")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hits", type=int, default=10_000, help="random hits per file (default 10000)")
    parser.add_argument("--events", type=int, default=5, help="signals in all three ONs (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best counts (default 3)")
    parser.add_argument("--out", help="folder for the cadence (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        folders = make_cadence(root, args.hits, args.events, args.seed)
        dats = [str(next(f.glob("*.dat"))) for f in folders]
        turboseti = str(ensure_turboseti())
        runs = {"ours": [], "turboSETI": []}
        for _ in range(args.repeat):   # interleaved: both see the same machine load
            runs["ours"].append(_run(sys.executable, OURS, [str(f) for f in folders]))
            runs["turboSETI"].append(_run(turboseti, TURBOSETI, dats))
        undeduped = _run(turboseti, TURBOSETI, dats, env={"NO_TOPHIT_DEDUPE": "1"})
    best = {side: min(r, key=lambda x: x["SECONDS"]) for side, r in runs.items()}
    print(f"cadence: 6 files x {args.hits:,} random hits (+{args.events} signals in every ON), filter threshold 3")
    for side, found in best.items():
        print(f"{side:>10}: {found['SECONDS']:8.3f} s  events {int(found['EVENTS'])}  "
              f"peak RSS {found['PEAK_RSS_KB'] / 1024:6.0f} MiB")
    ours_runs = ", ".join(f"{r['SECONDS']:.3f}" for r in runs["ours"])
    print(f"     ratio: {best['turboSETI']['SECONDS'] / best['ours']['SECONDS']:.1f}x faster than turboSETI "
          f"(every run of ours: {ours_runs} s)")
    print(f"turboSETI without its cross-file Top_Hit_# check: events {int(undeduped['EVENTS'])} "
          f"({'the same as' if undeduped['EVENTS'] == best['ours']['EVENTS'] else 'NOT the same as'} ours)")
    return 0 if undeduped["EVENTS"] == best["ours"]["EVENTS"] else 1


if __name__ == "__main__":
    sys.exit(main())
