"""Everything a finished run writes to ``--out`` besides the cells: report.md, results.json/.csv, figures, record."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..registry import get_registry
from . import plots
from .store import write_atomic, write_json
from .tables import ALL_METRICS, all_tables, problems, render_markdown, render_text, timing_table

CSV_FIELDS = ["id", "method", "family", "protocols", "train_view", "test", "test_label", "status", "cached", "scope",
              "images", "SAD", "MSE", "MAD", *[f"mean_{m}" for m in ALL_METRICS], "train_steps", "train_s", "step_s",
              "final_loss", "eval_s", "ms_per_image", "key", "reason"]


def _specs(records) -> dict:
    registry = get_registry()
    out = {}
    for r in records:
        try:
            out[r["method"]] = registry.get(r["method"])
        except Exception:  # a method whose plugin went away since the cell was cached
            out[r["method"]] = None
    return out


def csv_text(records) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        ev, tr, tm = r.get("eval") or {}, r.get("train") or {}, r.get("timings") or {}
        row = {
            "id": r["id"], "method": r["method"], "family": r["family"], "protocols": " ".join(r["protocols"]),
            "train_view": r["train_view"] or "", "test": r["test"], "test_label": r["test_label"], "status": r["status"],
            "cached": r.get("cached", False), "scope": ev.get("scope", ""), "images": ev.get("images", ""),
            "train_steps": tr.get("steps", ""), "train_s": tr.get("seconds", ""), "step_s": tr.get("step_seconds", ""),
            "final_loss": tr.get("final_loss", ""), "eval_s": tm.get("eval_s", ""), "ms_per_image": ev.get("ms_per_image", ""),
            "key": r["key"], "reason": r["reason"],
        }
        for m in ("SAD", "MSE", "MAD"):
            row[m] = _csv_num((ev.get("headline") or {}).get(m))
        for m in ALL_METRICS:
            row[f"mean_{m}"] = _csv_num((ev.get("means") or {}).get(m))
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def compute_seconds(records) -> float:
    """Training (each run once) plus evaluation time of every finished cell, as its record says."""
    runs = {}
    total = 0.0
    for r in records:
        if r["status"] != "ok":
            continue
        total += (r.get("timings") or {}).get("eval_s") or 0.0
        tr = r.get("train") or {}
        if tr.get("folder"):
            runs[tr["folder"]] = tr.get("seconds") or 0.0
    return total + sum(runs.values())


def _csv_num(v):
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(float(v))


def terminal_report(run) -> str:
    records = list(run.records.values())
    specs = _specs(records)
    parts = [render_text(t) for t in all_tables(records, specs, run.config.protocols, run.source)]
    issues = problems(records)
    if issues:
        parts.append("Cells that did not run:\n" + "\n".join(f"  {line}" for line in issues))
    return "\n\n".join(parts)


def _figures(run, out: Path) -> dict[str, Path]:
    records = [r for r in run.records.values()]
    figs = {}
    sad = plots.sad_plot(records, run.config.protocols, out / "sad.png")
    if sad:
        figs["sad"] = sad
    gap = plots.gap_plot(records, out / "ppt_gap.png")
    if gap:
        figs["gap"] = gap
    for method in run.plan.methods:
        grid = plots.grid_plot(method, records, run.source, out, out / f"grid_{method}.png")
        if grid:
            figs[f"grid_{method}"] = grid
    return figs


def markdown_report(run, figures: dict[str, Path], out: Path) -> str:
    cfg = run.config
    records = list(run.records.values())
    specs = _specs(records)
    p = cfg.preset
    rec = run.record
    lines = [
        "# mattezoo PPT benchmark",
        "",
        f"`{' '.join(rec.get('argv') or ['python', '-m', 'mattezoo.bench'])}`",
        "",
        f"Preset **{p.name}**: {p.description}. Data `{cfg.data}`; device `{cfg.device}`; metric convention `{cfg.convention}`.",
        f"Training per learned method and view: {p.steps} steps, batch {p.batch}, {p.crop} px crops, lr {p.lr if p.lr is not None else 'the recipe’s'}, seed {p.seed}.",
        "",
    ]
    lines += [f"- {n}" for n in run.source.notes]
    tests = {**run.source.tests, **run.source.extra_tests}
    lines.append("- Test sets: " + "; ".join(f"**{k}** = {t.label}, {len(t.dataset)} images, {t.view} view" for k, t in tests.items()) + ".")
    if run.source.missing:
        lines += [f"- **{proto}**: {why}" for proto, why in run.source.missing.items()]
    lines += [
        "- Trimap-free methods see only the image and are scored on the whole image; trimap-based and classical "
        "methods get the test set's ground-truth trimap and their SAD / MSE / MAD cover its unknown region "
        "(P3M section 3.3.2). The two scopes are not comparable with each other.",
        "",
    ]
    if run.source.is_p3m10k:
        lines += ["Rows marked *(paper)* are the numbers the P3M paper reports for the same protocol and test set.", ""]
    for table in all_tables(records, specs, cfg.protocols, run.source):
        lines += [render_markdown(table), ""]
    if "sad" in figures:
        lines += [f"![SAD per method and protocol]({figures['sad'].name})", ""]
    if "gap" in figures:
        lines += [f"![PPT gap per method]({figures['gap'].name})", ""]
    grids = [k for k in figures if k.startswith("grid_")]
    if grids:
        lines += ["## Predictions", "", "Each row: one test portrait (the view the method saw), its ground-truth matte, and the "
                  "prediction of each protocol; a classical method's one run per test set covers two protocols.", ""]
        for k in grids:
            lines += [f"![{k[5:]}]({figures[k].name})", ""]
    if run.timings.get("figures_error"):
        lines += [f"*{run.timings['figures_error']}*", ""]
    issues = problems(records)
    if issues:
        lines += ["## Cells that did not run", ""] + [f"- {line}" for line in issues] + [""]
    lines += ["## Timings", "", render_markdown(timing_table(records)), ""]
    versions = rec.get("versions", {})
    git = rec.get("git", {})
    dev = rec.get("device", {})
    lines += [
        "## Reproducibility",
        "",
        f"- started {rec.get('started_at')}, finished {rec.get('finished_at')}, wall time {rec.get('wall_s', 0):.0f} s "
        f"(data {run.timings.get('prepare_s', 0):.0f} s, cells {run.timings.get('cells_s', 0):.0f} s, report {run.timings.get('report_s', 0):.0f} s); "
        f"computing every cell took {compute_seconds(records):.0f} s (training runs plus evaluations, from the cell records, cached ones included)",
        f"- seed {rec.get('seed')}; python {versions.get('python')}, torch {versions.get('torch')}, numpy {versions.get('numpy')}, "
        f"mattezoo {versions.get('mattezoo')} ({versions.get('extension')})",
        f"- git commit {git.get('commit', 'unknown')}{' (with local changes)' if git.get('dirty') else ''}",
        f"- device {dev.get('requested')}: {dev.get('gpu') or dev.get('cpu')} ({dev.get('cpu_count')} CPUs, {dev.get('torch_threads')} torch threads)",
        f"- cells: {sum(1 for r in records if r['status'] == 'ok')} ok ({sum(1 for r in records if r.get('cached'))} from the cache), "
        f"{sum(1 for r in records if r['status'] == 'failed')} failed, {sum(1 for r in records if r['status'] in ('skipped', 'unavailable'))} not runnable",
        "- files: `results.json` (every cell, per-image values, this record), `results.csv`, `record.json`, `cells/` (the cache), "
        "`runs/` (checkpoints and training logs), `preds/` (kept predictions)",
        "",
    ]
    return "\n".join(lines)


def write_report(run, wall_s: float) -> dict[str, Path]:
    """Write report.md, results.json, results.csv, record.json and the figures; returns their paths."""
    import time

    from .record import make_record
    from .runner import save_results

    out = Path(run.config.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        figures = _figures(run, out)
    except ImportError as exc:  # tables and JSON still matter without matplotlib
        figures = {}
        run.timings["figures_error"] = f"no figures: {exc} (pip install matplotlib)"
    run.timings["report_s"] = time.perf_counter() - t0
    run.timings["compute_s"] = compute_seconds(list(run.records.values()))
    run.record = make_record(run.config, run.record.get("started_at", ""), wall_s + run.timings["report_s"], run.timings)
    records = list(run.records.values())
    write_atomic(out / "results.csv", csv_text(records))
    write_json(out / "record.json", run.record)
    save_results(run)
    write_atomic(out / "report.md", markdown_report(run, figures, out))
    return {"report": out / "report.md", "results": out / "results.json", "csv": out / "results.csv", "record": out / "record.json", **figures}
