"""`bl-reservoir submit ALG INPUT... [-- ALG_OPTIONS]`: a campaign of one algorithm over many inputs."""

from __future__ import annotations

import argparse

from bl_reservoir.cli._campaign import add_engine_flags, print_summary, run_with_progress


def _add_flags(parser: argparse.ArgumentParser) -> None:
    from bl_reservoir.cli.run import parse_size
    from bl_reservoir.runner import DEFAULT_MAX_RESULT_BYTES, DEFAULT_TIMEOUT_S

    add_engine_flags(parser)
    parser.add_argument("--bucket", metavar="URI", help="where results go (default: BL_RESERVOIR_BUCKET, "
                        "else ./bl-scale)")
    parser.add_argument("--max-attempts", type=int, default=3, metavar="N",
                        help="runs of a job whose worker died before it counts as failed (default 3)")
    parser.add_argument("--force", action="store_true", help="run again even where a complete result exists")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", dest="timeout_s",
                        help=f"seconds one job may run before its algorithm is killed and the job failed "
                        f"(default {DEFAULT_TIMEOUT_S:g}); kept with the campaign for resume and retry")
    parser.add_argument("--max-result-size", type=parse_size, default=None, metavar="SIZE", dest="max_result_bytes",
                        help=f"most one job's output may hold, e.g. 500MB or 2GiB (default "
                        f"{DEFAULT_MAX_RESULT_BYTES // 1024**3} GiB); kept with the campaign")
    parser.add_argument("--dashboard", action="store_true", help="serve the embedded cluster's Dask dashboard on "
                        "127.0.0.1 (its address is logged); off by default. A --scheduler has its own")
    events = parser.add_argument_group("cadence events (dedoppler/search campaigns, C8)")
    events.add_argument("--cadence", metavar="FILE", help="cadences as a list: six inputs a line, ON first (as "
                        "turboSETI's find_event_pipeline takes them); default: grouped from the inputs' headers")
    events.add_argument("--max-gap", type=float, default=30.0, metavar="MIN",
                        help="grouping from headers: most minutes between one observation's end and the next "
                        "one's start within a cadence (default 30)")
    events.add_argument("--filter-threshold", type=int, default=3, choices=(1, 2, 3),
                        help="event filter of each cadence's events stage, as `bl-reservoir events` (default 3)")
    events.add_argument("--no-events", action="store_true", help="no cadences, no events stage")


def configure(parser: argparse.ArgumentParser) -> None:
    _add_flags(parser)
    parser.add_argument("algorithm", metavar="ALG", help="package/name, e.g. energy_detection/preprocess_fine")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="INPUT... [-- ALG_OPTIONS]",
                        help="paths, globs, URIs or @list.txt; options after `--` go to the algorithm")


def split_rest(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Inputs (with any flags written after them applied to `args`) and the algorithm's options."""
    from bl_reservoir.cli._alg_options import split_alg_options

    options = split_alg_options(args, "bl-reservoir submit", _add_flags, [("inputs", "*")])
    return list(getattr(args, "inputs", [])), options


def event_settings(args: argparse.Namespace):
    """The campaign's `EventSettings` from the flags."""
    from bl_reservoir.io.cadence import read_cadence_list
    from bl_reservoir.scale.event_stage import EventSettings

    cadences = tuple(tuple(six) for six in read_cadence_list(args.cadence)) if args.cadence else None
    return EventSettings(enabled=not args.no_events, cadences=cadences, max_gap_s=args.max_gap * 60.0,
                         filter_threshold=args.filter_threshold)


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.errors import UsageError
    from bl_reservoir.scale import campaigns

    inputs, options = split_rest(args)
    if not inputs and not args.cadence:
        raise UsageError("submit needs at least one INPUT (path, glob, URI or @list.txt) or --cadence FILE")
    campaign, _ = run_with_progress(
        campaigns.submit, args.algorithm, inputs, options=options, bucket=args.bucket, db=args.db,
        scheduler=args.scheduler, max_attempts=args.max_attempts, detach=args.detach, force=args.force,
        timeout_s=args.timeout_s, max_result_bytes=args.max_result_bytes, dashboard=args.dashboard, events=event_settings(args), on_planned=print_plan)
    if args.detach:
        print(campaign)
        return 0
    return print_summary(args.db or _db_of_bucket(args.bucket), campaign)


def print_plan(cadences: list, refused: list) -> None:
    """The cadences a campaign found, and each group of inputs that formed none, with why (one line each)."""
    for cadence in cadences:
        print(f"cadence {cadence.id}: {cadence.target or '?'}, 6 observations", flush=True)
    for group in refused:
        print(f"not in a cadence: {group.reason}", flush=True)


def _db_of_bucket(bucket: str | None) -> str:
    from bl_reservoir import settings

    return settings.db_url(None, bucket)
