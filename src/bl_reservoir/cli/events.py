"""`bl-reservoir events ON1 OFF1 ON2 OFF2 ON3 OFF3 [--filter-threshold 3] [--out DIR]`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

HELP = "find events in an ON/OFF cadence of dedoppler results"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="RESULT",
                        help="dedoppler results folders or .dat files, ON first: ON1 OFF1 ON2 OFF2 ON3 OFF3")
    parser.add_argument("--filter-threshold", type=int, default=3, choices=(1, 2, 3),
                        help="1: SNR and non-zero drift; 2: also absent from every OFF; 3: also in every ON (default)")
    parser.add_argument("--snr-cut", type=float, default=None, help="drop hits at or below this SNR")
    parser.add_argument("--check-zero-drift", action="store_true", help="keep hits of zero drift too")
    parser.add_argument("--out", default="events", help="folder for events.csv and one PNG per event (default ./events)")
    parser.add_argument("--no-plots", action="store_true", help="write the CSV only")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.dedoppler.events import find_events, load_cadence

    cadence = load_cadence(args.inputs)
    events = find_events(cadence, args.filter_threshold, snr_cut=args.snr_cut,
                         check_zero_drift=args.check_zero_drift)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    events.to_csv(out / "events.csv")
    pictures = []
    if not args.no_plots:
        from bl_reservoir.dedoppler.event_plot import plot_event

        for n, (hit_id, rows) in enumerate(events.groupby("Hit_ID", sort=False)):
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(hit_id))
            pictures.append(plot_event(rows, cadence, out / f"event_{n:03d}_{name}.png"))
    n_events = events["Hit_ID"].nunique() if len(events) else 0
    print(f"{n_events} event(s) at filter {args.filter_threshold} ({len(events)} hits) -> {out / 'events.csv'}")
    for picture in pictures:
        print(f"  {picture}")
    return 0
