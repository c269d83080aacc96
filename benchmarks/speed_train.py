"""One P3M-Net training step (its recipe: forward, the seed's losses, backward, Adam), the engine's way against the official way.

    python benchmarks/speed_train.py                                   # CPU, the quick preset's batch and crop
    python benchmarks/speed_train.py --device cuda --batch 8 --size 512  # issue #6's GPU target

The same weights, batch and optimiser settings run as:

* ``official``: torch's pool/unpool (``pooling="torch"``), fp32, contiguous;
* ``engine``: what ``mattezoo train`` does: the compiled pool/unpool ops, fused Adam
  (``mattezoo.train.trainer.make_adam``), channels_last on CUDA (``--channels-last
  on|off``; default on CUDA only: at the quick preset's size on the CPU box it was
  slower) and, on CUDA, bf16 autocast (``--amp bf16|off``; default bf16 on CUDA,
  off on CPU where it does not pay on this kind of box).

Both start from identical weights and Adam state; the first step's losses
are compared (fp32 to 1e-4 relative; bf16 to 5e-2), then each step is timed
alternately, back to back, after warm-up steps, with ``torch.cuda.synchronize``
around every CUDA step. The ratio official / engine (> 1: the engine is faster)
is printed. Issue #6's target: official ~76 ms/step on an H200 at batch 8,
512², the engine at least 2× faster.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from mattezoo.bench.presets import PRESETS
from mattezoo.data import SyntheticP3M
from mattezoo.extension import status
from mattezoo.registry import get_method
from mattezoo.train import TrainingBatches, find_recipe
from mattezoo_methods.p3m.model import build_p3m_net
from train_step import Stepper

QUICK = PRESETS["quick"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=QUICK.batch, help=f"batch size (default: the quick preset's {QUICK.batch})")
    ap.add_argument("--size", type=int, default=QUICK.crop, help=f"crop side (default: the quick preset's {QUICK.crop})")
    ap.add_argument("--reps", type=int, default=5, help="timed steps per variant (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    ap.add_argument("--amp", choices=("bf16", "off", "auto"), default="auto", help="engine autocast (auto: bf16 on CUDA only)")
    ap.add_argument("--channels-last", choices=("on", "off", "auto"), default="auto",
                    help="engine memory format (auto: channels_last on CUDA only)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    args.channels_last = args.channels_last == "on" or (args.channels_last == "auto" and device.type == "cuda")
    amp = torch.bfloat16 if args.amp == "bf16" or (args.amp == "auto" and device.type == "cuda") else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}; {status()}")
    print(f"P3M-Net training step, batch {args.batch}, {args.size}² crops; engine: channels_last={args.channels_last}, amp={amp}")

    recipe = find_recipe(get_method("p3m_net"))
    samples = SyntheticP3M("train", args.batch, max(QUICK.size, args.size), QUICK.seed)[:]
    batch = TrainingBatches(samples, "blurred", batch=args.batch, size=args.size, needs=recipe.needs).batch_at(0)
    batch = {k: v.to(device) for k, v in batch.items()}
    torch.manual_seed(0)
    official_model = build_p3m_net(pooling="torch").to(device).train()
    engine_model = copy.deepcopy(official_model).set_pooling("mattezoo")
    loss_fn = recipe.stages[0].loss
    official = Stepper(official_model, dict(batch), loss_fn, recipe.lr, channels_last=False, amp=None)
    engine = Stepper(engine_model, dict(batch), loss_fn, recipe.lr, channels_last=args.channels_last, amp=amp,
                     fused_adam=True)

    first_official, first_engine = float(official()), float(engine())
    tolerance = 5e-2 if amp else 1e-4
    if abs(first_engine - first_official) > tolerance * abs(first_official):
        raise SystemExit(f"first-step losses differ: official {first_official:.6g}, engine {first_engine:.6g}")
    print(f"first-step loss: official {first_official:.6g}, engine {first_engine:.6g}")
    for _ in range(args.warmup):
        official(), engine()
    times = {"official": [], "engine": []}
    for _ in range(args.reps):
        for name, step in (("official", official), ("engine", engine)):
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    base, ours = statistics.median(times["official"]), statistics.median(times["engine"])
    print(f"  official {base:10.1f} ms/step\n  engine   {ours:10.1f} ms/step\n  ratio official/engine {base / ours:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
