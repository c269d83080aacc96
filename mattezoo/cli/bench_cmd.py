"""``mattezoo bench``: the PPT benchmark, the same as ``python -m mattezoo.bench`` (see :mod:`mattezoo.bench`)."""

from __future__ import annotations


def add_parser(sub):
    from ..bench.cli import DESCRIPTION, add_arguments

    p = sub.add_parser("bench", help="run the PPT protocols (B:B, B:N, N:B, N:N) for every method; tables like the paper's",
                       description=DESCRIPTION)
    return add_arguments(p)


def run(args) -> int:
    from ..bench.cli import run as run_bench_cli

    return run_bench_cli(args)
