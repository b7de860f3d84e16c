"""`bl-reservoir info FILE_OR_URI`."""

from __future__ import annotations

import argparse
import json

HELP = "print an observation's header, shape, coarse channels and band"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE_OR_URI", help=".fil or .h5 path or URI")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.io import open_observation

    with open_observation(args.file) as obs:
        freqs = obs.frequencies(0, 1)[0], obs.frequencies(obs.n_chans - 1, obs.n_chans)[0]
        summary = {
            "file": obs.path,
            "header": obs.header,
            "shape": list(obs.shape),
            "n_coarse_channels": obs.n_coarse_channels,
            "coarse_channel_width": obs.coarse_channel_width,
            "fmin_mhz": float(min(freqs)),
            "fmax_mhz": float(max(freqs)),
            "duration_s": obs.n_time * obs.header["tsamp"],
        }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    width = max(len(k) for k in summary["header"])
    for key, value in summary["header"].items():
        print(f"{key:>{width}} : {value}")
    print(f"{'shape':>{width}} : {tuple(summary['shape'])} (n_time, n_ifs, n_chans)")
    print(f"{'coarse':>{width}} : {summary['n_coarse_channels']} x {summary['coarse_channel_width']} fine channels")
    print(f"{'band':>{width}} : {summary['fmin_mhz']:.6f} - {summary['fmax_mhz']:.6f} MHz")
    print(f"{'duration':>{width}} : {summary['duration_s']:.3f} s")
    return 0
