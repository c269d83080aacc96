"""``mattezoo train``: train a learned method on synthetic, P3M-10k or folder data, then evaluate it.

Writes ``OUT/checkpoint.pt`` (resumable: rerun the same command to continue an
interrupted run), ``OUT/log.jsonl`` and ``OUT/eval.json`` (the final
evaluation on the data's B and N test sets). Under ``torchrun
--nproc_per_node=N -m mattezoo train ...`` it trains with
DistributedDataParallel; only rank 0 writes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..data.sources import SPEC_FORMS, open_source
from ..errors import InvalidOptionError
from ..train import AMP_MODES, TrainConfig, train_method
from ..train.distributed import from_env
from .predict_cmd import parse_options


def add_parser(sub):
    p = sub.add_parser("train", help="train a learned method (its recipe from its plugin) and evaluate it")
    p.add_argument("--method", required=True, help="a registered method with a training recipe (see `mattezoo list`)")
    p.add_argument("--data", default="synthetic", help=f"{' | '.join(SPEC_FORMS)} (default: %(default)s)")
    p.add_argument("--train-on", choices=("blurred", "normal"), default="blurred", help="training images (default: %(default)s)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimiser steps (default: 1000)")
    length.add_argument("--epochs", type=float, help="passes over the training set (converted to steps)")
    p.add_argument("--size", type=int, default=512, help="training crop side (default: %(default)s, the paper's)")
    p.add_argument("--batch", type=int, default=8, help="global batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the recipe's, i.e. the paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model init and every data choice (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--amp", choices=AMP_MODES, default="auto", help="mixed precision (default: %(default)s: bf16 on GPUs, fp32 on CPU)")
    p.add_argument("--channels-last", action="store_true", help="train in channels-last memory format")
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    p.add_argument("--checkpoint-every", type=int, default=0, help="checkpoint every N steps (default: only at the end)")
    p.add_argument("--log-every", type=int, default=10, help="log every N steps (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes (default: %(default)s)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="a method option (repeatable)")
    p.add_argument("--recipe-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe option, e.g. --recipe-option \"loss_weights={'composition': 0.5}\"")
    p.add_argument("--init", help="start from these weights (a plain state dict such as an official release, or a checkpoint)")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT/checkpoint.pt exists")
    p.add_argument("--n-train", type=int, help="training images to use (synthetic: default 256; real data: all)")
    p.add_argument("--n-test", type=int, help="test images per test set (synthetic: default 32; real data: all)")
    p.add_argument("--data-size", type=int, default=256, help="side of synthetic portraits (default: %(default)s)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt, log.jsonl, eval.json)")
    return p


def run(args) -> int:
    synthetic = args.data == "synthetic"
    source = open_source(
        args.data, size=args.data_size, seed=args.seed,
        n_train=args.n_train if args.n_train is not None else (256 if synthetic else None),
        n_test=args.n_test if args.n_test is not None else (32 if synthetic else None),
    )
    if args.train_on not in source.train_views:
        raise InvalidOptionError(
            f"--data {args.data} has no {args.train_on} training images (it has: {', '.join(source.train_views)}); "
            f"use --train-on {source.train_views[0]}"
        )
    steps = args.steps
    if args.epochs is not None:
        if not args.epochs > 0:
            raise InvalidOptionError(f"--epochs must be positive, got {args.epochs}")
        steps = max(1, math.ceil(args.epochs * len(source.train) / args.batch))
    cfg = TrainConfig(
        method=args.method, options=parse_options(args.option), recipe_options=parse_options(args.recipe_option),
        steps=steps if steps is not None else 1000, batch=args.batch, size=args.size, lr=args.lr, seed=args.seed,
        device=args.device, amp=args.amp, channels_last=args.channels_last, grad_clip=args.grad_clip,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, workers=args.workers,
        progress=not args.no_progress, view=args.train_on,
    )
    out = Path(args.out)
    result = train_method(cfg, source.train, out=out, resume=not args.no_resume, init=args.init)
    if not from_env().is_main:
        return 0
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    step_time = f", {result.step_seconds * 1000:.0f} ms/step" if result.step_seconds else ""
    print(f"trained {cfg.method} on {args.data} ({cfg.view}) for {result.steps} steps: final loss {loss}{step_time}")
    print(f"checkpoint: {result.checkpoint}\nlog: {result.log}")
    if args.no_eval:
        return 0
    from ..evaluation import evaluate_method

    report = {"method": cfg.method, "data": args.data, "train_on": cfg.view, "steps": result.steps, "tests": {}}
    for key, test in source.tests.items():
        scores = evaluate_method(result.model, test.dataset, test.view, progress=not args.no_progress, desc=f"eval {key}")
        report["tests"][key] = {"label": test.label, **scores.to_dict(per_image=True)}
        shown = "  ".join(f"{k} {v:.4g}" for k, v in scores.headline.items() if v == v)
        print(f"{cfg.view[0].upper()}:{key}  {test.label}: {shown}  ({scores.scope})")
    (out / "eval.json").write_text(json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")
    print(f"evaluation: {out / 'eval.json'}")
    return 0
