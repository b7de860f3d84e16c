"""A C1 test algorithm, `sleepy/peak`, registered by entry point (put this folder on PYTHONPATH).

One hit per coarse channel at the brightest fine channel of the time-averaged spectrum. It
sleeps `--seconds` first, so a test can kill its worker mid-job, and appends one line per run to
`$BLR_SLEEPY_LOG`, so a test can count how often each input really ran.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bl_reservoir.errors import ReservoirError
from bl_reservoir.io import open_observation
from bl_reservoir.results import write_results

STAMP_WIDTH = 16


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="blr_sleepy")
    parser.add_argument("input")
    parser.add_argument("out", nargs="?")
    parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    out = Path(args.out or Path(args.input).with_suffix(""))
    try:
        with open_observation(args.input) as obs:
            if os.environ.get("BLR_SLEEPY_LOG"):
                with open(os.environ["BLR_SLEEPY_LOG"], "a") as log:
                    log.write(f"{Path(args.input).name} {os.getpid()}\n")
            time.sleep(args.seconds)
            rows, stamps = [], []
            for cc, block in obs.iter_coarse_channels():
                spectrum = block.mean(axis=0)
                peak = int(np.argmax(spectrum))
                start = min(max(peak - STAMP_WIDTH // 2, 0), block.shape[1] - STAMP_WIDTH)
                first, _ = obs.coarse_channel_bounds(cc)
                noise = float(np.std(spectrum)) or 1.0
                rows.append({"index": first + peak, "freqs": float(obs.frequencies(first + peak, first + peak + 1)[0]),
                             "coarse_channel": cc, "snr": float((spectrum[peak] - np.median(spectrum)) / noise)})
                stamps.append(block[:, start:start + STAMP_WIDTH])
            write_results(out, dict(obs.header), pd.DataFrame(rows), np.stack(stamps), {})
    except ReservoirError as exc:
        print(f"blr_sleepy: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
