"""Make the pictures of docs/training.md: a short P3M-Net training on the synthetic set.

    python docs/make_training_figures.py [--steps 1500] [--size 64] [--threads 1] [--out docs/img/training]

Trains ``p3m_net`` from scratch (no pretrained weights exist offline) on
synthetic blurred portraits, then draws the held-out test portraits with the
untrained and the trained model's mattes next to the ground truth, and the
loss curve from the run's JSONL log. Everything shown is computed here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import mattezoo  # noqa: E402
from mattezoo.data import SyntheticP3M  # noqa: E402
from mattezoo.metrics import evaluate  # noqa: E402
from mattezoo.train import TrainConfig, train_method  # noqa: E402
from mattezoo.train.losses import P3M_WEIGHTS  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="p3m_net")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--size", type=int, default=64, help="training crop side")
    ap.add_argument("--data-size", type=int, default=128, help="side of the synthetic portraits")
    ap.add_argument("--n-train", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--show", type=int, default=4, help="test portraits in the figure")
    ap.add_argument("--run-dir", help="keep the run (checkpoint, log) here (default: a temporary folder)")
    ap.add_argument("--threads", type=int, help="torch threads (1 is fastest on a busy machine)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "img" / "training"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = SyntheticP3M("train", args.n_train, args.data_size, seed=0)
    train = [train[i] for i in range(len(train))]
    test = SyntheticP3M("P3M-500-P", args.show, args.data_size, seed=0)
    test = [test[i] for i in range(len(test))]

    torch.manual_seed(0)
    untrained = mattezoo.create_method(args.method)
    before = [mattezoo.predict(untrained, s.blurred) for s in test]
    cfg = TrainConfig(method=args.method, steps=args.steps, batch=args.batch, size=args.size, lr=args.lr, seed=0,
                      log_every=5, checkpoint_every=50)
    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="mattezoo-train-"))
    result = train_method(cfg, train, "blurred", run_dir)
    after = [mattezoo.predict(result.model, s.blurred) for s in test]

    sad_before = np.mean([evaluate(p, s.alpha, metrics=["SAD"])["SAD"] for p, s in zip(before, test)])
    sad_after = np.mean([evaluate(p, s.alpha, metrics=["SAD"])["SAD"] for p, s in zip(after, test)])
    cols = ("blurred input", "untrained", f"after {args.steps} steps", "ground truth")
    fig, axes = plt.subplots(len(test), 4, figsize=(8, 2.1 * len(test)))
    for row, (s, b, a) in enumerate(zip(test, before, after)):
        for col, img in enumerate((s.blurred, b, a, s.alpha)):
            ax = axes[row, col]
            ax.imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=1 if img.ndim == 2 else None)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(cols[col], fontsize=9)
    fig.suptitle(f"{args.method} on held-out synthetic portraits: mean SAD {sad_before:.2f} -> {sad_after:.2f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "before_after.png", dpi=80)
    plt.close(fig)

    records = [json.loads(line) for line in result.log.read_text().splitlines()]
    steps = [r for r in records if r.get("event") == "step"]
    fig, ax = plt.subplots(figsize=(6, 3))
    # Each part as it enters the total (P3M_WEIGHTS), so the parts add up to the loss.
    parts = (("loss", 1.0, "total"), ("global", P3M_WEIGHTS["global"], "global / 6"), ("local", P3M_WEIGHTS["local"], "2 · local"),
             ("fusion", P3M_WEIGHTS["fusion"], "3 · fusion"), ("composition", P3M_WEIGHTS["composition"], "composition"))
    for key, weight, label in parts:
        ax.plot([r["step"] for r in steps], [weight * r[key] for r in steps], label=label, lw=1.5 if key == "loss" else 1)
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_yscale("log"), ax.legend(fontsize=8), ax.grid(alpha=0.3)
    ax.set_title(f"{args.method}: training losses (batch {args.batch}, {args.size}² crops, lr {args.lr:g})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=80)
    plt.close(fig)
    summary = {"method": args.method, "steps": args.steps, "sad_before": float(sad_before), "sad_after": float(sad_after),
               "step_seconds": result.step_seconds, "seconds": result.seconds, "config": cfg.to_dict()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
