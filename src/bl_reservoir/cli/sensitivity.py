"""`bl-reservoir sensitivity ALG [ALG ...]`: injection-recovery, side by side, saved as a report."""

from __future__ import annotations

import argparse
import re
import time

HELP = "measure an algorithm's sensitivity by injection and recovery"


def configure(parser: argparse.ArgumentParser) -> None:
    # `--drift -4:4:9` must read as a value, not an option: argparse only knows plain negative numbers
    parser._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+:[-\d.:]*$")
    parser.add_argument("algorithms", metavar="ALG", nargs="+", help="algorithms to measure (package/name)")
    parser.add_argument("--snr", default="5:50:10", metavar="LO:HI:N", help="injected SNR values (default 5:50:10)")
    parser.add_argument("--drift", default="-4:4:9", metavar="LO:HI:N",
                        help="drift rates in Hz/s (default -4:4:9)")
    parser.add_argument("--width", default="2:20:3", metavar="LO:HI:N", help="signal FWHM in Hz (default 2:20:3)")
    parser.add_argument("--trials", type=int, default=2, help="signals per grid point (default 2)")
    parser.add_argument("--sampling", choices=("grid", "lhs"), default="grid",
                        help="every grid point, or a Latin hypercube over the same ranges (default grid)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="three drift rates, one width, two trials, few noise channels: minutes, not hours")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="report folder (default ./sensitivity/<name>)")
    parser.add_argument("--name", default=None, help="report name in the bucket (default: from the algorithms)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="run as a campaign on this Dask scheduler (workers must see --out)")
    parser.add_argument("--bucket", default=None, metavar="URI",
                        help="bucket that also receives the report, at <bucket>/sensitivity/<name>/")
    parser.add_argument("--reuse", action="store_true",
                        help="keep input files and results of an earlier run of the same design in --out "
                             "(only re-match and re-report what changed)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at a time without --scheduler (default 2)")
    parser.add_argument("--coarse-channel-width", type=int, default=65536,
                        help="fine channels per synthetic coarse channel (default 65536)")
    parser.add_argument("--noise-channels", type=int, default=None,
                        help="noise-only coarse channels (default 2 with --quick, else 16)")
    parser.add_argument("--channels", type=float, default=2.0,
                        help="matching tolerance: base channels at t = 0 (default 2)")
    parser.add_argument("--drift-bins", type=float, default=2.0, help="matching tolerance in drift bins (default 2)")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="ALG=ARGS",
                        help="options passed to one algorithm, e.g. 'dedoppler/search=--snr 8' (repeatable)")


def default_name(algorithms: list[str], quick: bool) -> str:
    """`dedoppler-search+energy_detection-preprocess_fine[-quick]`: safe as one path component."""
    name = "+".join(re.sub(r"[^A-Za-z0-9_.-]", "-", a) for a in algorithms)
    return f"{name}-quick" if quick else name


def _options(items: list[str], algorithms: list[str]) -> dict[str, list[str]]:
    import shlex

    from bl_reservoir.errors import UsageError

    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, args = item.partition("=")
        if not sep or name not in algorithms:
            raise UsageError(f"--option {item!r}: expected ALG=ARGS with ALG one of {', '.join(algorithms)}")
        out.setdefault(name, []).extend(shlex.split(args))
    return out


def _snr(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.3g}"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bl_reservoir import settings, storage
    from bl_reservoir.algorithms import get_algorithm
    from bl_reservoir.io.fetch import local_path, scheme
    from bl_reservoir.sensitivity import harness, report
    from bl_reservoir.sensitivity.grid import Grid, parse_spec, quick_grid
    from bl_reservoir.sensitivity.matching import Tolerances

    for name in args.algorithms:
        get_algorithm(name)  # an unknown name fails here, before anything is synthesised
    options = _options(args.option, args.algorithms)
    grid = Grid(parse_spec(args.snr, name="snr"), parse_spec(args.drift, name="drift"),
                parse_spec(args.width, name="width"), trials=args.trials, sampling=args.sampling)
    if args.quick:
        grid = quick_grid(grid)
    noise = args.noise_channels if args.noise_channels is not None else (2 if args.quick else 16)
    design = harness.Design(grid, coarse_channel_width=args.coarse_channel_width, noise_coarse_channels=noise,
                            seed=args.seed)
    name = args.name or default_name(args.algorithms, args.quick)
    out = Path(args.out or Path("sensitivity") / name)
    bucket = settings.bucket(args.bucket)
    scheduler = settings.scheduler(args.scheduler)
    if scheduler:
        runs = f"{bucket.rstrip('/')}/{storage.SENSITIVITY}/{name}/runs"
        storage.check_bucket(bucket)   # the user's bucket as given; the report's folders in it are ours to make
        if scheme(runs) == "file":
            local_path(runs).mkdir(parents=True, exist_ok=True)
        runner = harness.campaign_runner(runs, scheduler, out / "campaigns.db", force=not args.reuse)
    else:
        runner = harness.local_runner(str(out / "runs"), jobs=args.jobs, force=not args.reuse)
    tolerances = Tolerances(channels=args.channels, drift_bins=args.drift_bins)
    print(f"injecting {grid.n_signals} signals ({grid.sampling}) plus {noise} noise-only coarse channels "
          f"into {out / 'inputs'}")
    started = time.monotonic()
    injected, recoveries = harness.measure(args.algorithms, design, out, runner, options=options,
                                           tolerances=tolerances, reuse=args.reuse)
    doc = report.build(name, design, injected, recoveries, tolerances, quick=args.quick,
                       wall_seconds=time.monotonic() - started)
    paths = report.write(doc, out)
    uri = report.upload(paths, bucket, name)
    for alg, entry in doc["algorithms"].items():
        if entry.get("error"):
            print(f"{alg}: failed: {entry['error']}")
            continue
        off = entry["doppler_smearing"].get("off", {}).get("snr_at_90")
        print(f"{alg}: recall {entry['recall']:.0%}, SNR at 90% recall {_snr(entry['snr_at_90'])} "
              f"(smearing off {_snr(off)}), false hits {entry['false_hits']['per_mhz']:.3g} per MHz "
              f"({entry['false_hits']['count']} in {entry['false_hits']['bandwidth_mhz']:.3g} MHz)")
    print(f"report {out / report.MARKDOWN_NAME}, also at {uri}")
    return 1 if any(e.get("error") for e in doc["algorithms"].values()) else 0
