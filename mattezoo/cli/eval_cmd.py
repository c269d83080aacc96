"""``mattezoo eval PRED_DIR GT_DIR [--trimap-dir D]``: matting metrics of a folder of predictions.

Files are paired by stem (``a.png`` with ``a.jpg``), every prediction needs a
ground truth and the other way round, and each pair must have one size. The
dataset means are printed as a table; JSON (means, counts, per-image values,
convention) and CSV (one row per image, then the mean) are written to
``--out`` (or to ``--json`` / ``--csv``), never over an input file.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..extension import status as extension_status
from ..images import check_trimap, list_images, read_matte
from ..metrics import CONVENTIONS, DEFAULT_CONVENTION, MetricAccumulator

PROGRESS_MIN_FILES = 20  # below this a progress bar is only noise


def add_parser(sub):
    p = sub.add_parser("eval", help="compute SAD, MSE, MAD, Grad, Conn (and -T variants) of predicted mattes")
    p.add_argument("pred_dir", help="folder of predicted alpha mattes")
    p.add_argument("gt_dir", help="folder of ground-truth alpha mattes, paired with predictions by file stem")
    p.add_argument("--trimap-dir", help="folder of trimaps (0/128/255) paired by stem; adds SAD-T, MSE-T, MAD-T")
    p.add_argument("--convention", choices=CONVENTIONS, default=DEFAULT_CONVENTION,
                   help="whole-image: P3M's evaluation (default); trimap-region: mmagic's, on the unknown region")
    p.add_argument("--metrics", help="comma-separated subset, e.g. SAD,MSE,CONN (default: all the inputs allow)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--out", default="mattezoo-eval", help="folder for metrics.json and metrics.csv (default: %(default)s)")
    p.add_argument("--json", help="write the JSON report here instead of OUT/metrics.json")
    p.add_argument("--csv", help="write the CSV table here instead of OUT/metrics.csv")
    p.add_argument("--overwrite", action="store_true", help="replace existing report files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _by_stem(folder: Path, what: str) -> dict[str, Path]:
    files = list_images(folder)
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise InputError(f"{what} folder {str(folder)!r} has two files with stem {f.stem!r}: {out[f.stem].name} and {f.name}")
        out[f.stem] = f
    if not out:
        raise InputError(f"{what} folder {str(folder)!r} holds no image files")
    return out


def _listing(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def pair_files(pred_dir, gt_dir, trimap_dir=None) -> list[tuple[str, Path, Path, Path | None]]:
    """``(stem, pred, gt, trimap)`` for every stem, with clear errors for missing partners."""
    preds, gts = _by_stem(Path(pred_dir), "prediction"), _by_stem(Path(gt_dir), "ground-truth")
    no_gt = sorted(set(preds) - set(gts))
    if no_gt:
        raise InputError(f"no ground truth in {str(gt_dir)!r} for predictions {_listing(no_gt)} (files are paired by stem)")
    no_pred = sorted(set(gts) - set(preds))
    if no_pred:
        raise InputError(f"no prediction in {str(pred_dir)!r} for ground truths {_listing(no_pred)} (files are paired by stem)")
    trimaps = _by_stem(Path(trimap_dir), "trimap") if trimap_dir else {}
    if trimap_dir:
        no_trimap = sorted(set(gts) - set(trimaps))
        if no_trimap:
            raise InputError(f"no trimap in {str(trimap_dir)!r} for {_listing(no_trimap)} (files are paired by stem)")
    return [(s, preds[s], gts[s], trimaps.get(s)) for s in sorted(gts)]


def _outputs(args, inputs: set[Path]) -> tuple[Path, Path]:
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out / "metrics.json"
    csv_path = Path(args.csv) if args.csv else out / "metrics.csv"
    if json_path.resolve() == csv_path.resolve():
        raise InputError(f"--json and --csv name the same file {str(json_path)!r}")
    for path in (json_path, csv_path):
        if path.resolve() in inputs:
            raise InputError(f"refusing to write the report over the input file {str(path)!r}")
        if path.exists() and not args.overwrite:
            raise InputError(f"{str(path)!r} exists; pass --overwrite to replace it or choose another --out")
    return json_path, csv_path


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.6g}"


def format_table(summary: dict) -> str:
    metrics = summary["metrics"]
    header = ["images", *metrics]
    row = [str(summary["images"]), *(_fmt(summary["mean"][m]) for m in metrics)]
    widths = [max(len(h), len(c)) for h, c in zip(header, row)]
    lines = [
        "  ".join(h.rjust(w) for h, w in zip(header, widths)),
        "  ".join(c.rjust(w) for c, w in zip(row, widths)),
    ]
    notes = [f"{m}: mean of {summary['count'][m]} images" for m in metrics if summary["count"][m] != summary["images"]]
    return "\n".join(lines + notes)


def _write_csv(path: Path, summary: dict) -> None:
    metrics = summary["metrics"]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", *metrics])
        for rec in summary["per_image"]:
            writer.writerow([rec["name"], *(repr(rec[m]) if math.isfinite(rec[m]) else "" for m in metrics)])
        writer.writerow(["mean", *(repr(summary["mean"][m]) if math.isfinite(summary["mean"][m]) else "" for m in metrics)])


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def run(args) -> int:
    import torch

    pairs = pair_files(args.pred_dir, args.gt_dir, args.trimap_dir)
    inputs = {p.resolve() for _, *files in pairs for p in files if p is not None}
    json_path, csv_path = _outputs(args, inputs)
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        raise InputError(f"--device {args.device!r} is not a device name such as cpu, cuda or cuda:0") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but torch sees no CUDA device")

    acc = MetricAccumulator(metrics=args.metrics, convention=args.convention)
    show = not args.no_progress and len(pairs) >= PROGRESS_MIN_FILES
    for stem, pred_path, gt_path, trimap_path in tqdm(pairs, desc="eval", unit="img", disable=not show, file=sys.stderr):
        pred, gt = read_matte(pred_path), read_matte(gt_path)
        if pred.shape != gt.shape:
            raise InputError(
                f"{pred_path.name} is {pred.shape[0]}×{pred.shape[1]} but its ground truth {gt_path.name} is "
                f"{gt.shape[0]}×{gt.shape[1]}; they must match"
            )
        trimap = check_trimap(trimap_path, gt.shape, name=f"trimap {trimap_path.name}") if trimap_path else None
        to = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        try:
            acc.update(to(pred), to(gt), to(trimap) if trimap is not None else None, names=stem)
        except InputError as exc:
            raise InputError(f"{stem}: {exc}") from exc

    summary = acc.summary()
    report = {
        "convention": args.convention,
        "pred_dir": str(args.pred_dir),
        "gt_dir": str(args.gt_dir),
        "trimap_dir": str(args.trimap_dir) if args.trimap_dir else None,
        "extension": extension_status(),
        "device": str(device),
        **summary,
    }
    for path in (json_path, csv_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(_json_safe(report), indent=2) + "\n")
    _write_csv(csv_path, summary)
    print(f"convention: {args.convention} ({len(pairs)} image pairs)")
    print(format_table(summary))
    print(f"wrote {json_path} and {csv_path}")
    return 0
