"""`bl-reservoir run ALG INPUT [--bucket URI] [--force] [--timeout S] [--max-result-size SIZE] [-- ALG_OPTIONS]`:
one job, with progress."""

from __future__ import annotations

import argparse
import json

HELP = "run one algorithm on one input and upload the result"

_MARKS = {"received": "·", "skipped": "=", "fetched": "↓", "running": "▶", "uploaded": "↑", "done": "✓",
          "failed": "✗"}


def parse_size(text: str) -> int:
    """Bytes from `2GiB`, `500MB`, `1e6` or `1048576` (for `--max-result-size`)."""
    from dask.utils import parse_bytes

    try:
        size = parse_bytes(text)
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 2GiB, 500MB, 1048576)") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a size must be positive")
    return size


def _flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from bl_reservoir.runner import DEFAULT_MAX_RESULT_BYTES, DEFAULT_TIMEOUT_S

    parser.add_argument("--bucket", default=None, help="bucket URI (default BL_RESERVOIR_BUCKET or ./bl-scale)")
    parser.add_argument("--force", action="store_true", help="run even if the bucket has a complete result")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help="kill the algorithm after S seconds (default %(default)g)")
    parser.add_argument("--max-result-size", type=parse_size, default=DEFAULT_MAX_RESULT_BYTES, metavar="SIZE",
                        help="fail the job (killing the algorithm) when its output folder grows past SIZE, "
                             "e.g. 500MB (default 2GiB)")
    parser.add_argument("--json", action="store_true", help="print the events as JSON lines")
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    _flags(parser)
    parser.add_argument("algorithm", metavar="ALG", help="package/name, e.g. energy_detection/preprocess_fine")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="INPUT [-- ALG_OPTIONS]",
                        help="local path, file://, http(s)://, gs:// or s3:// URI; options for the algorithm "
                             "after `--` (e.g. -- --threshold 1024)")


def split_rest(args: argparse.Namespace) -> list[str]:
    """Set `args.input` and the flags written after ALG; return the algorithm's options (after `--`)."""
    from bl_reservoir.cli._alg_options import split_alg_options

    return split_alg_options(args, "bl-reservoir run", _flags, [("input", None)])


def _show(event: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event), flush=True)
        return
    name = event["event"]
    detail = {
        "received": f"{event['algorithm']} on {event['input']}",
        "skipped": f"{event.get('result')}: {event.get('reason')}",
        "fetched": f"{event.get('path')} ({event.get('size_bytes')} bytes)",
        "running": f"{event['algorithm']} ({event.get('kind')}, version {event.get('version')})",
        "uploaded": f"{event.get('result')} ({event.get('n_hits')} hits)",
        "done": f"{event.get('n_hits')} hits in {event.get('wall_seconds')} s",
        "failed": event.get("reason", ""),
    }.get(name, "")
    clock = event["time"][11:19]
    # Progress goes to stdout, the failed line too: stderr keeps the one error line the CLI prints.
    print(f"{clock} {_MARKS.get(name, ' ')} {name:<8} {detail}", flush=True)


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.runner import run_job

    options = split_rest(args)
    outcome = run_job(args.algorithm, args.input, bucket=args.bucket, options=options, force=args.force,
                      timeout=args.timeout, max_result_bytes=args.max_result_size,
                      on_event=lambda e: _show(e, args.json))
    _index(args, outcome)
    if not args.json:
        print(f"result: {outcome.result_uri}")
    return 0


def _index(args: argparse.Namespace, outcome) -> None:
    """Put the result in the hits index beside the bucket (as a campaign's are), so the front end lists
    it whatever else the store holds; a store that cannot be opened only costs the listing."""
    import logging

    from bl_reservoir import settings
    from bl_reservoir.errors import ReservoirError
    from bl_reservoir.scale.index import HitIndex, read_for_index
    from bl_reservoir.scale.outcomes import obs_name_of

    try:
        header, hits = read_for_index(outcome.result_uri)
        index = HitIndex(settings.db_url(None, args.bucket))
        try:
            index.index_result(None, obs_name_of(outcome.result_uri), args.algorithm, outcome.result_uri, header, hits)
        finally:
            index.close()
    except ReservoirError as exc:
        logging.getLogger(__name__).warning("%s: not in the hits index (%s)", outcome.result_uri, exc)
