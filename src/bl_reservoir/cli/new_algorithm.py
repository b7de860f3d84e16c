"""`bl-reservoir new-algorithm NAME [--dir D]`: scaffold an external algorithm package that runs as-is."""

from __future__ import annotations

import argparse

HELP = "scaffold an external algorithm package"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="package name (a Python identifier, e.g. my_search)")
    parser.add_argument("--dir", default=".", help="folder to create the package in (default: here)")
    parser.add_argument("--script", default="search", help="script name, so ALG is NAME/SCRIPT (default search)")


def run(args: argparse.Namespace) -> int:
    from bl_reservoir.scaffold import new_algorithm

    package_dir = new_algorithm(args.name, args.dir, script=args.script)
    print(f"created {package_dir}")
    print(f"run it:  BL_RESERVOIR_ALGORITHMS={package_dir.parent} bl-reservoir run {args.name}/{args.script} OBS.h5")
    return 0
