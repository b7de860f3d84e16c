"""The commands that run an algorithm (`run`, `submit`) take its options after `--`, and their own flags
anywhere before it: argparse stops at the first positional of a REMAINDER, so the rest is parsed here."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def split_alg_options(args: argparse.Namespace, prog: str, add_flags: Callable[[argparse.ArgumentParser], object],
                      positionals: Sequence[tuple[str, str | None]]) -> list[str]:
    """Parse `args.rest` (all after ALG) up to `--` into `args`: the command's flags (`add_flags`) and its
    positionals (`(name, nargs)`); return what follows `--`, the algorithm's own options."""
    rest = list(args.rest)
    cut = rest.index("--") if "--" in rest else len(rest)
    head, options = rest[:cut], rest[cut + 1:]
    late = argparse.ArgumentParser(prog=prog, add_help=False, argument_default=argparse.SUPPRESS)
    add_flags(late)
    for name, nargs in positionals:
        late.add_argument(name, nargs=nargs)
    late.parse_args(head, namespace=args)
    return options
