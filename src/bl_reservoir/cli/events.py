"""`bl-reservoir events ON1 OFF1 ON2 OFF2 ON3 OFF3 [--filter-threshold 3] [--out DIR] [--bucket URI]`."""

from __future__ import annotations

import argparse
import os

HELP = "find events in an ON/OFF cadence of dedoppler results"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="RESULT",
                        help="dedoppler results, ON first (ON1 OFF1 ON2 OFF2 ON3 OFF3): local folders or .dat "
                             "files, result URIs (gs://, s3://), or observation names in --bucket")
    parser.add_argument("--filter-threshold", type=int, default=3, choices=(1, 2, 3),
                        help="1: SNR and non-zero drift; 2: also absent from every OFF; 3: also in every ON (default)")
    parser.add_argument("--snr-cut", type=float, default=None, help="drop hits at or below this SNR")
    parser.add_argument("--check-zero-drift", action="store_true", help="keep hits of zero drift too")
    parser.add_argument("--bucket", metavar="URI", help="where observation names are looked up: "
                        "<bucket>/<obs>/dedoppler/search (default: BL_RESERVOIR_BUCKET, else ./bl-scale)")
    parser.add_argument("--out", default="events", help="folder for events.csv, events.parquet and one PNG per "
                        "event (default ./events)")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")


def result_source(item: str, bucket: str) -> str:
    """A local path or URI as it is; an observation name (no folder, not a file here) as its dedoppler
    result in the bucket."""
    from bl_reservoir.storage import result_uri

    if "://" in item or os.path.sep in item or os.path.exists(item):
        return item
    return result_uri(bucket, item, "dedoppler", "search")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir import settings
    from bl_reservoir.dedoppler.event_folder import write_events
    from bl_reservoir.dedoppler.events import find_events, load_cadence

    bucket = settings.bucket(args.bucket)
    cadence = load_cadence([result_source(item, bucket) for item in args.inputs])
    events = find_events(cadence, args.filter_threshold, snr_cut=args.snr_cut,
                         check_zero_drift=args.check_zero_drift)
    pictures = write_events(cadence, events, args.out, plots=not args.no_plots)
    n_events = events["Hit_ID"].nunique() if len(events) else 0
    print(f"{n_events} event(s) at filter {args.filter_threshold} ({len(events)} hits) -> "
          f"{os.path.join(args.out, 'events.csv')}")
    for picture in pictures:
        print(f"  {os.path.join(args.out, picture)}")
    return 0
