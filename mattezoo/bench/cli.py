"""``python -m mattezoo.bench`` / ``mattezoo bench``: run the PPT protocols for every method and print the tables."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

from ..data.sources import SPEC_FORMS
from ..errors import InputError, MattezooError
from ..metrics import CONVENTIONS, DEFAULT_CONVENTION
from ..spec import PROTOCOLS
from .plan import parse_methods, parse_protocols
from .presets import PRESETS, get_preset
from .runner import BenchConfig, prepare, run_cells

DESCRIPTION = (
    "The privacy-preserving-training benchmark of the P3M paper: train every learned method on blurred (B) "
    "and normal (N) portraits, test on both, and print tables shaped like the paper's Tables 1-4."
)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--preset", default="quick", help=f"{', '.join(PRESETS)} (default: %(default)s: "
                   f"{PRESETS['quick'].description})")
    p.add_argument("--methods", default="all", help="'all' (default) or a comma-separated list of registered methods")
    p.add_argument("--protocols", default="all", help=f"'all' (default) or a comma-separated subset of {','.join(PROTOCOLS)} (train:test)")
    p.add_argument("--data", default=None, help=f"{' | '.join(SPEC_FORMS)} (default: the preset's, synthetic for quick and standard)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the preset's; quick runs on cpu)")
    p.add_argument("--out", default="mattezoo-bench", help="output folder; a rerun with the same arguments reuses its finished cells (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic data, the folder split and training (default: the preset's, 0)")
    p.add_argument("--convention", choices=CONVENTIONS, default=DEFAULT_CONVENTION, help="metric convention (default: %(default)s, P3M's)")
    size = p.add_argument_group("preset overrides")
    size.add_argument("--steps", type=int, help="training steps per method and training view")
    size.add_argument("--batch", type=int, help="training batch size")
    size.add_argument("--crop", type=int, help="training crop side in px")
    size.add_argument("--lr", type=float, help="learning rate")
    size.add_argument("--size", type=int, help="side of the synthetic portraits in px")
    size.add_argument("--n-train", type=int, help="training portraits")
    size.add_argument("--n-test", type=int, help="portraits per test set")
    size.add_argument("--max-side", type=int, help="real data: shrink images with a longer side than this")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice; 1 helps on a busy shared machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true", help="do not print the tables at the end")
    return p


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(prog="python -m mattezoo.bench", description=DESCRIPTION))


def config_from_args(args, argv: list[str] | None = None) -> BenchConfig:
    preset = get_preset(args.preset)
    for name in ("steps", "batch", "crop", "size", "n_train", "n_test", "max_side"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if args.seed is not None and args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.lr is not None and not args.lr > 0:
        raise InputError(f"--lr must be positive, got {args.lr}")
    preset = preset.with_overrides(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, size=args.size,
                                   n_train=args.n_train, n_test=args.n_test, max_side=args.max_side, seed=args.seed)
    data = args.data or preset.data
    if data is None:
        raise InputError(f"the {preset.name!r} preset has no default data; give --data ({' | '.join(SPEC_FORMS)}), e.g. --data p3m10k:/data/P3M-10k")
    return BenchConfig(
        preset=preset,
        methods=parse_methods(args.methods),
        protocols=parse_protocols(args.protocols),
        data=data,
        device=args.device or preset.device,
        out=Path(args.out),
        convention=args.convention,
        progress=not args.no_progress,
        argv=list(argv) if argv is not None else _command_line(),
    )


def _command_line() -> list[str]:
    """How this process was started, as a user would type it again."""
    head = Path(sys.argv[0]).as_posix() if sys.argv else ""
    if head.endswith("bench/__main__.py"):
        return ["python", "-m", "mattezoo.bench", *sys.argv[1:]]
    return ["mattezoo" if head.endswith("mattezoo") or head.endswith("__main__.py") else head, *sys.argv[1:]]


def run_bench(config: BenchConfig, *, echo=print):
    """Run a benchmark end to end; returns the finished :class:`~mattezoo.bench.runner.BenchRun`."""
    from .report import terminal_report, write_report

    if echo is None:
        echo = _silent
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    run = prepare(config)
    run.record = {"started_at": started_at}
    todo = [c for c in run.plan.runnable() if run.records[c.id]["status"] != "ok"]
    cached = sum(1 for r in run.records.values() if r.get("cached"))
    echo(f"mattezoo bench: preset {config.preset.name}, data {config.data}, device {config.device}: "
         f"{len(run.plan.methods)} method(s), {len(run.plan.cells)} cell(s), {len(todo)} to run, {cached} from the cache -> {config.out}")
    run_cells(run)
    paths = write_report(run, time.perf_counter() - t0)
    if echo is not _silent:
        echo("")
        echo(terminal_report(run))
        echo("")
        echo(f"wrote {paths['report']} ({run.record['wall_s']:.0f} s)")
    return run


def _silent(*_args, **_kwargs) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run(args, argv)


def run(args, argv: list[str] | None = None) -> int:
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise InputError(f"--threads must be a positive integer, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        config = config_from_args(args, argv)
        run_obj = run_bench(config, echo=None if args.quiet else print)
    except MattezooError as exc:
        print(f"mattezoo bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mattezoo bench: interrupted; rerun the same command to continue from the finished cells", file=sys.stderr)
        return 130
    failed = sum(1 for r in run_obj.records.values() if r["status"] == "failed")
    return 1 if failed else 0
