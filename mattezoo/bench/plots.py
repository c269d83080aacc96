"""The benchmark's figures (matplotlib, Agg backend: no display needed).

* ``sad.png``: headline SAD per method, one bar per protocol (classical
  methods show their two test sets; their B:x and N:x bars are the same run).
* ``ppt_gap.png``: SAD(B:N) − SAD(N:N) per learned method.
* ``grid_<method>.png``: for the first few test portraits of each test set,
  the input, the ground truth and the prediction of each protocol.

Headline SAD is on the whole image for trimap-free methods and on the unknown
region for the others, as in the paper; the two are not on one scale, so the
SAD figure gives each family its own panel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..images import read_gray
from .tables import gaps

PROTOCOL_COLOURS = {"B:B": "#1f77b4", "B:N": "#ff7f0e", "N:B": "#2ca02c", "N:N": "#d62728"}
FAMILY_TITLES = {"trimap-free": "trimap-free (whole image)", "trimap-based": "learned trimap-based (unknown region)",
                 "classical": "classical (unknown region)"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sad(records, method, protocol):
    for r in records:
        if r["method"] == method and protocol in r["protocols"] and r["status"] == "ok":
            return r["eval"]["headline"].get("SAD")
    return None


def sad_plot(records, protocols, path: Path) -> Path | None:
    plt = _pyplot()
    families = [f for f in FAMILY_TITLES if any(r["family"] == f for r in records)]
    panels = []
    for fam in families:
        methods = []
        for r in records:
            if r["family"] == fam and r["method"] not in methods:
                methods.append(r["method"])
        if any(_sad(records, m, p) is not None for m in methods for p in protocols):
            panels.append((fam, methods))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 2.6 * sum(max(1, len(m)) for _, m in panels) ** 0.8 + 1.6 * len(panels), 3.4), squeeze=False)
    width = 0.8 / max(1, len(protocols))
    for ax, (fam, methods) in zip(axes[0], panels):
        x = np.arange(len(methods))
        for i, p in enumerate(protocols):
            vals = [_sad(records, m, p) for m in methods]
            heights = [v if v is not None else 0.0 for v in vals]
            bars = ax.bar(x + (i - (len(protocols) - 1) / 2) * width, heights, width, label=p, color=PROTOCOL_COLOURS.get(p))
            for b, v in zip(bars, vals):
                if v is None:
                    ax.annotate("n/a", (b.get_x() + b.get_width() / 2, 0), ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_xticks(x, methods, fontsize=8)
        ax.set_title(FAMILY_TITLES[fam], fontsize=9)
        ax.set_ylabel("SAD (lower is better)", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=7, title="train:test", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("SAD per method and protocol", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gap_plot(records, path: Path) -> Path | None:
    values = gaps(records)
    if not values:
        return None
    plt = _pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(4.2, 1.8 + 0.9 * len(names)), 3.0))
    colours = ["#d62728" if values[n] > 0 else "#2ca02c" for n in names]
    bars = ax.bar(names, [values[n] for n in names], color=colours, width=0.6)
    for b, n in zip(bars, names):
        v = values[n]
        ax.annotate(f"{v:+.3f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=7)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("SAD(B:N) − SAD(N:N)", fontsize=8)
    ax.set_title("PPT gap on normal test faces\n(> 0: training on blurred faces is worse)", fontsize=9)
    ax.tick_params(labelsize=8)
    lo, hi = ax.get_ylim()
    pad = 0.15 * (hi - lo)
    ax.set_ylim(lo - (pad if lo < 0 else 0), hi + pad)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def grid_plot(method: str, records, source, out: Path, path: Path, rows_per_test: int = 2) -> Path | None:
    """Input, ground truth and every protocol's prediction for the first portraits of each test set."""
    recs = [r for r in records if r["method"] == method and r["status"] == "ok" and r["predictions"]]
    if not recs:
        return None
    tests = []
    for r in recs:
        if r["test"] not in tests:
            tests.append(r["test"])
    order = {"B": 0, "N": 1, "NP": 2}
    tests.sort(key=lambda t: order.get(t, 9))
    per_test = {t: [r for r in recs if r["test"] == t] for t in tests}
    ncols = 2 + max(len(v) for v in per_test.values())
    rows = []
    for t in tests:
        test = source.test_set(t)
        names = [p["name"] for p in per_test[t][0]["predictions"]][:rows_per_test]
        for name in names:
            index = test.dataset.names.index(name) if hasattr(test.dataset, "names") and name in test.dataset.names else None
            if index is None:
                continue
            sample = test.dataset[index]
            panels = [(sample.view(test.view), f"input ({t}: {test.view})"), (sample.alpha, "ground truth")]
            for r in per_test[t]:
                pred = next((p for p in r["predictions"] if p["name"] == name), None)
                if pred is not None and (out / pred["path"]).is_file():
                    panels.append((read_gray(out / pred["path"]), " = ".join(r["protocols"])))
            rows.append(panels)
    if not rows:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.45 * ncols, 0.35 + 1.55 * len(rows)), squeeze=False, layout="constrained")
    for ax_row, panels in zip(axes, rows):
        for ax, item in zip(ax_row, panels + [None] * (ncols - len(panels))):
            ax.axis("off")
            if item is None:
                continue
            img, title = item
            ax.imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=255 if img.dtype == np.uint8 else 1, interpolation="nearest")
            ax.set_title(title, fontsize=6.5, pad=2)
    fig.suptitle(f"{method}: predictions per protocol (train:test)", fontsize=8.5)
    fig.savefig(path, dpi=85)
    plt.close(fig)
    return path
