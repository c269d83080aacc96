"""The ``mattezoo`` command line (also ``python -m mattezoo``).

Each subcommand is a module in this package with ``add_parser(subparsers)``
and ``run(args) -> int``; :data:`COMMANDS` lists them in help order.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import MattezooError

COMMANDS = ("list", "info", "predict", "anonymize", "data", "eval", "train", "bench", "export")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="mattezoo", description="A plugin-based zoo of image-matting methods.")
    parser.add_argument("--version", action="version", version=f"mattezoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f".{name}_cmd", __name__)
        command = module.add_parser(sub)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MattezooError as exc:
        print(f"mattezoo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mattezoo {args.command}: interrupted", file=sys.stderr)
        return 130
