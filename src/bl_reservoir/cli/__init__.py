"""The `bl-reservoir` command: a thin layer over library objects (contract C4).

Each subcommand lives in its own module here, `cli/<name>.py`, with `HELP`, `configure(parser)`
and `run(args) -> int`. Only the chosen one is imported, so `--help` and start-up stay cheap.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from bl_reservoir import __version__
from bl_reservoir.errors import ReservoirError
from bl_reservoir.script import one_line_warnings

#: name -> (module under bl_reservoir.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "synthesise a BL-like observation with injected signals and its truth table"),
    "info": ("info", "print an observation's header, shape, coarse channels and band"),
    "algorithms": ("algorithms", "list the algorithms in the registry"),
    "env": ("env", "build an external algorithm package's virtual environment"),
    "new-algorithm": ("new_algorithm", "scaffold an external algorithm package"),
    "run": ("run", "run one algorithm on one input and upload the result"),
    "submit": ("submit", "start a campaign: one algorithm over many inputs"),
    "status": ("status", "show campaigns and jobs"),
    "retry": ("retry", "re-submit the failed jobs of a campaign"),
    "cancel": ("cancel", "cancel the unfinished jobs of a campaign"),
    "resume": ("resume", "re-submit the unfinished jobs of a campaign"),
    "worker": ("worker", "start a Dask worker that serves algorithms"),
    "serve": ("serve", "serve the web front end and API"),
    "events": ("events", "find events in an ON/OFF cadence of dedoppler results"),
    "sensitivity": ("sensitivity", "measure an algorithm's sensitivity by injection and recovery"),
    "demo": ("demo", "synthesise a small cadence, run a campaign, show where the results are"),
}


def _chosen(argv: Sequence[str]) -> str | None:
    for token in argv:
        if token in COMMANDS:
            return token
        if not token.startswith("-"):
            return None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` is fully configured (lazy imports)."""
    parser = argparse.ArgumentParser(
        prog="bl-reservoir", description="SETI searches over Breakthrough Listen data, at scale.")
    parser.add_argument("--version", action="version", version=f"bl-reservoir {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen(argv)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(f"bl_reservoir.cli.{module}").configure(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one line on stderr and a non-zero exit for every `ReservoirError`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        module = COMMANDS[args.command][0]
        with one_line_warnings("bl-reservoir"):
            return int(importlib.import_module(f"bl_reservoir.cli.{module}").run(args) or 0)
    except ReservoirError as exc:
        print(f"bl-reservoir: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bl-reservoir: interrupted", file=sys.stderr)
        return 130


