"""`bl-reservoir algorithms`: the registry as a table (name, kind, version, environment)."""

from __future__ import annotations

import argparse
import json

HELP = "list the algorithms in the registry"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.algorithms import list_algorithms

    rows = [{"name": a.name, "kind": a.kind, "version": a.version, "environment": a.env_state(),
             "target": a.target} for a in list_algorithms()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no algorithms found (set BL_RESERVOIR_ALGORITHMS to folders of external packages)")
        return 0
    columns = ("name", "kind", "version", "environment")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    return 0
