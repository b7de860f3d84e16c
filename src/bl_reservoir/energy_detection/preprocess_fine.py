"""Energy detection as a C1 script: `python -m bl_reservoir.energy_detection.preprocess_fine IN [OUT] ...`.

Writes the standard results folder (C2) to OUT (default: IN without its extension):
`header.{pkl,json}`, `info_df.{pkl,parquet}` (columns `index`, `statistic`, `pvalue`, `freqs`,
`coarse_channel`; one row per hit window), `filtered.npy` (float32 `(n_hits, n_time, window)`
cleaned stamps, row i = hit i), then `manifest.json`.

With `--best-per-band N` it also writes, before the manifest:

- `best_hits.npy`: float32 `(n_best, n_time, window)`, the stamps of the N highest statistics
  in each band, stacked band by band (1000-1400 MHz inclusive, then (1400, 1700], then
  above 1700 MHz), highest statistic first within a band; a band with fewer hits gives fewer
  rows, so `n_best <= 3 N`.
- `best_hits.json`: `{"per_band": N, "bands_mhz": [[1000, 1400], [1400, 1700], [1700, null]],
  "rows": [...], "band": [...]}`; `rows[k]` is the info_df row (and `filtered.npy` row) of
  `best_hits.npy[k]`, `band[k]` its band label ("1000-1400", "1400-1700", "1700-").

The mid-resolution product is the same script with `--coarse-channel-width 1024 --pvalue 1e-25`,
windows of 256 every 128 as at fine resolution, like the original's final `energy_detection_mid.py`
(see docs/energy_detection.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bl_reservoir.energy_detection.detect import (
    BANDS_MHZ,
    Parameters,
    StampSpool,
    best_per_band,
    detect,
)
from bl_reservoir.script import default_out_dir, run_script

log = logging.getLogger(__name__)

ALGORITHM = {"package": "energy_detection", "name": "preprocess_fine"}


def run(input_path: str | os.PathLike, out_dir: str | os.PathLike | None = None,
        params: Parameters = Parameters(), *, progress: bool = False) -> Path:
    """Run energy detection on one file and write its results folder; returns the folder."""
    from bl_reservoir import __version__
    from bl_reservoir.io import open_observation
    from bl_reservoir.results import build_manifest, utcnow, write_results

    input_path = os.fspath(input_path)
    out = Path(out_dir) if out_dir is not None else default_out_dir(input_path)
    started_at, t0 = utcnow(), time.perf_counter()
    with open_observation(input_path, coarse_channel_width=params.coarse_channel_width) as obs:
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").unlink(missing_ok=True)  # the folder is being rewritten
        for stale in out.glob(".stamps-*.f32"):  # scratch of an attempt that was killed
            stale.unlink(missing_ok=True)
        with StampSpool(out, obs.n_time, params.window) as spool:
            hits, stamps = detect(obs, params, progress=progress, spool=spool)
            header, width = obs.header, obs.coarse_channel_width
            size = os.path.getsize(obs.path) if os.path.exists(obs.path) else None
            uri = os.path.abspath(input_path) if "://" not in input_path else input_path
            manifest = build_manifest(
                algorithm={**ALGORITHM, "version": __version__},
                parameters={**params.as_dict(), "coarse_channel_width": width},
                input_uri=uri, input_size=size, started_at=started_at, finished_at=utcnow(),
                wall_seconds=round(time.perf_counter() - t0, 3),
            )
            written = write_results(out, header, hits, stamps, manifest, extra_files=_best_files(hits, stamps, params))
            del stamps  # the memory map, before its scratch file goes
    return written


def _best_files(hits, stamps: np.ndarray, params: Parameters) -> dict:
    """`best_hits.npy` and `best_hits.json` (see the module docstring), or nothing without --best-per-band."""
    if not params.best_per_band:
        return {}
    best = best_per_band(hits, params.best_per_band)
    rows = best["row"].to_numpy()
    return {
        "best_hits.npy": np.asarray(stamps[rows]) if rows.size else np.zeros((0, *stamps.shape[1:]), np.float32),
        "best_hits.json": {
            "per_band": params.best_per_band,
            "bands_mhz": [[lo, None if hi == float("inf") else hi] for lo, hi in BANDS_MHZ],
            "rows": rows.tolist(), "band": best["band"].tolist(),
        },
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bl_reservoir.energy_detection.preprocess_fine",
        description="Energy detection (D'Agostino-Pearson K^2 per window) over every coarse channel of a "
                    "BL .h5 or .fil file; writes the standard results folder.")
    parser.add_argument("input", help="observation file (.h5 or .fil), local path or URI")
    parser.add_argument("out_dir", nargs="?", help="results folder (default: the input path without extension)")
    parser.add_argument("--threshold", type=float, default=2048.0, help="K^2 above which a window is a hit")
    parser.add_argument("--pvalue", type=float, default=None,
                        help="instead of --threshold: p-value below which a window is a hit (mid-resolution: 1e-25, "
                             "with --coarse-channel-width 1024)")
    parser.add_argument("--window", type=int, default=256, help="window width in fine channels")
    parser.add_argument("--stride", type=int, default=128, help="step between windows in fine channels")
    parser.add_argument("--knots", type=int, default=16, help="bandpass spline: W // knots + 1 channels between knots")
    parser.add_argument("--coarse-channel-width", type=int, default=None,
                        help="fine channels per coarse channel (default: from the header)")
    parser.add_argument("--best-per-band", type=int, default=0, metavar="N",
                        help="also write best_hits.npy/.json: the N highest statistics in each band")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """C1 entry point: 0 on success; on bad input one line on stderr and a non-zero exit code."""
    args = build_parser().parse_intermixed_args(argv)  # OUT may also follow the options
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def work() -> None:  # Parameters() refuses bad values with a ReservoirError too
        params = Parameters(threshold=args.threshold, pvalue=args.pvalue, window=args.window, stride=args.stride,
                            knots=args.knots, coarse_channel_width=args.coarse_channel_width,
                            best_per_band=args.best_per_band)
        out = run(args.input, args.out_dir, params, progress=not args.quiet and sys.stderr.isatty())
        log.info("results in %s", out)

    return run_script("energy_detection/preprocess_fine", args.input, work)


if __name__ == "__main__":
    sys.exit(main())
