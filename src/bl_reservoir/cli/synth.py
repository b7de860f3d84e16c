"""`bl-reservoir synth OUT.{h5,fil}`: a BL-like observation with injected signals, and its truth CSV."""

from __future__ import annotations

import argparse


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    try:
        return float(lo), float(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI, got {text!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output path ending in .h5 or .fil")
    parser.add_argument("--coarse-channels", type=int, default=1, help="number of coarse channels (default 1)")
    parser.add_argument("--coarse-channel-width", type=int, default=1_048_576,
                        help="fine channels per coarse channel (default 1048576, as BL fine products)")
    parser.add_argument("--signals", type=int, default=4, help="injected signals in the whole file (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for a reproducible file")
    parser.add_argument("--snr", type=_range, default=(10.0, 50.0), metavar="LO:HI", help="SNR range (default 10:50)")
    parser.add_argument("--drift", type=_range, default=(-4.0, 4.0), metavar="LO:HI",
                        help="drift-rate range in Hz/s (default -4:4)")
    parser.add_argument("--width", type=_range, default=(2.0, 20.0), metavar="LO:HI",
                        help="signal width range in Hz (default 2:20)")
    parser.add_argument("--doppler-smearing", action="store_true", help="smear drifting power over bins")
    parser.add_argument("--noise-only", action="store_true", help="no signals, noise only")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.errors import UsageError
    from bl_reservoir.synth import make_observation, truth_path

    if not args.out.lower().endswith((".h5", ".fil")):
        raise UsageError(f"{args.out}: output must end in .h5 or .fil")
    try:
        path, truth = make_observation(
            args.out, n_coarse_channels=args.coarse_channels, coarse_channel_width=args.coarse_channel_width,
            n_signals=args.signals, seed=args.seed, snr_range=args.snr, drift_range=args.drift,
            width_range=args.width, doppler_smearing=args.doppler_smearing, noise_only=args.noise_only)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {path} ({args.coarse_channels} coarse channels, {len(truth)} signals)")
    print(f"truth {truth_path(path)}")
    return 0
