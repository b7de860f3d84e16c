"""`bl-reservoir submit ALG INPUT... [-- ALG_OPTIONS]`: a campaign of one algorithm over many inputs."""

from __future__ import annotations

import argparse

from bl_reservoir.cli._campaign import add_engine_flags, print_summary, run_with_progress


def _add_flags(parser: argparse.ArgumentParser) -> None:
    add_engine_flags(parser)
    parser.add_argument("--bucket", metavar="URI", help="where results go (default: BL_RESERVOIR_BUCKET, "
                        "else ./bl-scale)")
    parser.add_argument("--max-attempts", type=int, default=3, metavar="N",
                        help="runs of a job whose worker died before it counts as failed (default 3)")
    parser.add_argument("--force", action="store_true", help="run again even where a complete result exists")


def configure(parser: argparse.ArgumentParser) -> None:
    _add_flags(parser)
    parser.add_argument("algorithm", metavar="ALG", help="package/name, e.g. energy_detection/preprocess_fine")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="INPUT... [-- ALG_OPTIONS]",
                        help="paths, globs, URIs or @list.txt; options after `--` go to the algorithm")


def split_rest(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Inputs (with any flags written after them applied to `args`) and the algorithm's options."""
    rest = list(args.rest)
    cut = rest.index("--") if "--" in rest else len(rest)
    head, options = rest[:cut], rest[cut + 1:]
    late = argparse.ArgumentParser(prog="bl-reservoir submit", add_help=False, argument_default=argparse.SUPPRESS)
    _add_flags(late)
    late.add_argument("inputs", nargs="*")
    late.parse_args(head, namespace=args)
    return list(getattr(args, "inputs", [])), options


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.errors import UsageError
    from bl_reservoir.scale import campaigns

    inputs, options = split_rest(args)
    if not inputs:
        raise UsageError("submit needs at least one INPUT (path, glob, URI or @list.txt)")
    campaign, _ = run_with_progress(
        campaigns.submit, args.algorithm, inputs, options=options, bucket=args.bucket, db=args.db,
        scheduler=args.scheduler, max_attempts=args.max_attempts, detach=args.detach, force=args.force)
    if args.detach:
        print(campaign)
        return 0
    return print_summary(args.db or _db_of_bucket(args.bucket), campaign)


def _db_of_bucket(bucket: str | None) -> str:
    from bl_reservoir import settings

    return settings.db_url(None, bucket)
