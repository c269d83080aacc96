"""Run the planned cells: train each learned method once per training view, evaluate every cell, cache it.

Robustness, because a full run takes long:

* each finished cell is a JSON file under ``OUT/cells/`` keyed by everything
  that decides its numbers (method, data, preset, device, convention); a rerun
  with the same arguments loads it instead of running again, and a changed
  argument that changes results makes a new key (see :func:`cell_config`);
* training runs in ``OUT/runs/<method>/<view>/<key12>/`` and resumes from its
  checkpoint (a finished run returns at once);
* ``OUT/results.json`` is rewritten atomically after every cell, so it is
  always valid JSON, even mid-run or after a kill;
* a method or cell that fails is recorded with its traceback and the run
  goes on with the others.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.sources import DataSource, open_source
from ..errors import InputError
from ..evaluation import evaluate_method
from ..images import write_png
from ..metrics import DEFAULT_CONVENTION
from ..registry import get_method
from .plan import Cell, Plan, cache_key, make_plan
from .presets import Preset
from .store import CellStore, read_json, write_json

TRAIN_SUMMARY = "bench-train.json"


@dataclass
class BenchConfig:
    """Everything a run depends on; :func:`mattezoo.bench.cli.config_from_args` builds it from the command line."""

    preset: Preset
    methods: list[str]
    protocols: list[str]
    data: str
    device: str
    out: Path
    convention: str = DEFAULT_CONVENTION
    progress: bool = True
    argv: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "preset": self.preset.to_dict(),
            "methods": list(self.methods),
            "protocols": list(self.protocols),
            "data": self.data,
            "device": self.device,
            "out": str(self.out),
            "convention": self.convention,
            "argv": list(self.argv),
        }


@dataclass
class BenchRun:
    """The state of one run: its config, data, plan and the record of every cell so far."""

    config: BenchConfig
    source: DataSource
    plan: Plan
    records: "OrderedDict[str, dict]"
    started: float
    timings: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)  # reproducibility record, filled by report


def check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"--device {device!r} is not a device; valid: cpu, cuda, cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device!r}: valid devices are cpu, cuda, cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device!r} was asked for, but torch sees no CUDA device here; use --device cpu")
    return dev


def _trainer():
    """``(has_recipe, TrainConfig, train_method)`` of the training engine, or an error message."""
    try:
        from ..train import TrainConfig, has_recipe, train_method
    except Exception as exc:  # the engine is optional for classical-only runs
        return None, f"the training engine (mattezoo.train) cannot be imported: {type(exc).__name__}: {exc}"
    return (has_recipe, TrainConfig, train_method), ""


def train_config_dict(cfg: BenchConfig, cell: Cell) -> dict:
    p = cfg.preset
    return {
        "method": cell.method,
        "steps": p.steps,
        "batch": p.batch,
        "size": p.crop,
        "lr": p.lr,
        "seed": p.seed,
        "device": cfg.device,
        "amp": p.amp,
        "view": cell.train_view,
        "checkpoint_every": p.checkpoint_every,
    }


def cell_config(cfg: BenchConfig, source: DataSource, cell: Cell) -> dict:
    """What decides a cell's numbers: its cache key is the hash of this.

    Untrained (classical) cells leave the training settings out, so changing
    ``--steps`` reruns the learned cells only.
    """
    spec = get_method(cell.method)
    test = source.test_set(cell.test)
    conf = {
        "method": cell.method,
        "factory": spec.factory,
        "family": spec.family,
        "test": test.fingerprint(),
        "convention": cfg.convention,
        "device": cfg.device,
        "keep": cfg.preset.keep,
    }
    if cell.trains:
        conf["train"] = {**train_config_dict(cfg, cell), "data": {k: v for k, v in source.fingerprint().items() if k != "tests"}}
    return conf


def assign_keys(cfg: BenchConfig, source: DataSource, plan: Plan) -> None:
    for cell in plan.cells:
        if cell.status != "planned":
            cell.key = cache_key({"id": cell.id, "status": cell.status, "protocols": cell.protocols})
            continue
        conf = cell_config(cfg, source, cell)
        cell.key = cache_key(conf)
        cell.train_key = cache_key(conf["train"]) if cell.trains else ""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def base_record(cfg: BenchConfig, source: DataSource, cell: Cell) -> dict:
    test = source.tests.get(cell.test) or source.extra_tests.get(cell.test)
    return {
        "id": cell.id,
        "key": cell.key,
        "method": cell.method,
        "family": cell.family,
        "trains": cell.trains,
        "train_view": cell.train_view,
        "test": cell.test,
        "test_label": test.label if test else cell.test,
        "test_view": test.view if test else None,
        "protocols": list(cell.protocols),
        "status": cell.status,
        "reason": cell.reason,
        "cached": False,
        "train": None,
        "eval": None,
        "predictions": [],
        "timings": {},
        "traceback": None,
    }


def prepare(cfg: BenchConfig) -> BenchRun:
    """Open the data, plan the cells, give each its key and load what the cache already has."""
    started = time.perf_counter()
    check_device(cfg.device)
    t0 = time.perf_counter()
    p = cfg.preset
    source = open_source(cfg.data, size=p.size, n_train=p.n_train, n_test=p.n_test, seed=p.seed, max_side=p.max_side)
    trainer, why = _trainer()
    if trainer is None:
        def has_recipe(_name):
            raise RuntimeError(why)
    else:
        has_recipe = trainer[0]
    plan = make_plan(cfg.methods, cfg.protocols, source, has_recipe)
    assign_keys(cfg, source, plan)
    store = CellStore(cfg.out)
    records: OrderedDict[str, dict] = OrderedDict()
    for cell in plan.cells:
        cached = store.load(cell) if cell.status == "planned" else None
        if cached is not None:
            # The same evaluation may fill other protocols in this plan (classical B:B alone vs B:B = N:B).
            cached["cached"], cached["protocols"] = True, list(cell.protocols)
            records[cell.id] = cached
        else:
            records[cell.id] = base_record(cfg, source, cell)
    run = BenchRun(cfg, source, plan, records, started)
    run.timings["prepare_s"] = time.perf_counter() - t0
    return run


def results_payload(run: BenchRun) -> dict:
    return {
        "format": "mattezoo-bench",
        "version": 1,
        "config": run.config.to_dict(),
        "data": {"spec": run.source.spec, "kind": run.source.kind, "notes": run.source.notes, "missing": run.source.missing,
                 "tests": {k: {"label": t.label, "view": t.view, "images": len(t.dataset)} for k, t in {**run.source.tests, **run.source.extra_tests}.items()},
                 "train_images": len(run.source.train), "train_views": list(run.source.train_views)},
        "record": run.record,
        "timings": run.timings,
        "cells": list(run.records.values()),
    }


def save_results(run: BenchRun) -> None:
    write_json(Path(run.config.out) / "results.json", results_payload(run))


def _save_predictions(out: Path, cell: Cell, result) -> list[dict]:
    folder = out / "preds" / f"{cell.id}-{cell.key[:12]}"
    saved = []
    for pred in result.predictions:
        path = folder / f"{pred.name}.png"
        folder.mkdir(parents=True, exist_ok=True)
        write_png(path, np.round(np.clip(pred.alpha, 0, 1) * 255).astype(np.uint8))
        saved.append({"name": pred.name, "path": str(path.relative_to(out))})
    return saved


def _evaluate_cell(run: BenchRun, cell: Cell, model, train_info: dict | None) -> None:
    cfg, record = run.config, run.records[cell.id]
    test = run.source.test_set(cell.test)
    t0 = time.perf_counter()
    try:
        obj = model if model is not None else cell.method
        # Untrained (classical) methods take numpy-backed CPU tensors; trained models sit on --device.
        device = cfg.device if model is not None else None
        result = evaluate_method(obj, test.dataset, test.view, device=device, convention=cfg.convention,
                                 keep=cfg.preset.keep, progress=False)
        record["eval"] = result.to_dict(per_image=True)
        record["predictions"] = _save_predictions(Path(cfg.out), cell, result)
        record["status"], record["reason"], record["traceback"] = "ok", "", None
    except Exception as exc:
        record["status"], record["reason"] = "failed", f"evaluation failed: {type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    record["train"] = train_info
    eval_s = time.perf_counter() - t0
    record["timings"] = {"train_s": (train_info or {}).get("seconds"), "eval_s": eval_s,
                         "ms_per_image": (record["eval"] or {}).get("ms_per_image")}
    record["finished_at"] = _now()
    if record["status"] == "ok":
        CellStore(cfg.out).save(cell, record)


def _fail(run: BenchRun, cells: list[Cell], reason: str, tb: str | None) -> None:
    for cell in cells:
        rec = run.records[cell.id]
        rec["status"], rec["reason"], rec["traceback"], rec["finished_at"] = "failed", reason, tb, _now()


def _train(run: BenchRun, cell: Cell):
    """Train (or resume, or reload) the model of ``cell``'s method and view; returns (model, summary)."""
    trainer, why = _trainer()
    if trainer is None:
        raise RuntimeError(why)
    _has_recipe, TrainConfig, train_method = trainer
    cfg = run.config
    conf = train_config_dict(cfg, cell)
    folder = Path(cfg.out) / "runs" / cell.method / cell.train_view / cell.train_key[:12]
    tc = TrainConfig(method=cell.method, steps=conf["steps"], batch=conf["batch"], size=conf["size"], lr=conf["lr"],
                     seed=conf["seed"], device=cfg.device, amp=conf["amp"], checkpoint_every=conf["checkpoint_every"],
                     log_every=max(1, conf["steps"] // 20), progress=cfg.progress, view=cell.train_view)
    result = train_method(tc, run.source.train, view=cell.train_view, out=folder, resume=True)
    summary_path = folder / TRAIN_SUMMARY
    if result.step_seconds is not None:  # steps ran in this call (a resumed run counts only its own)
        summary = {
            "steps": result.steps,
            "seconds": result.seconds,
            "step_seconds": result.step_seconds,
            "final_loss": result.final_loss,
            "folder": str(folder.relative_to(cfg.out)),
            "checkpoint": str(result.checkpoint.relative_to(cfg.out)) if result.checkpoint else None,
            "log": str(result.log.relative_to(cfg.out)) if result.log else None,
            "config": conf,
        }
        write_json(summary_path, summary)
    else:
        summary = read_json(summary_path) or {
            "steps": result.steps, "seconds": None, "step_seconds": None, "final_loss": result.final_loss,
            "folder": str(folder.relative_to(cfg.out)), "config": conf,
        }
        summary["resumed_complete"] = True
    return result.model, summary


def _drop_checkpoint(run: BenchRun, first: Cell, cells: list[Cell], info: dict) -> None:
    """Delete a finished run's checkpoint once every cell of this plan that needs it is cached.

    A later plan that needs the same training run again (say, a new test
    set) retrains it; the cells of this one stay cached.
    """
    needing = [c for c in run.plan.runnable() if c.trains and c.train_key == first.train_key]
    if any(run.records[c.id]["status"] != "ok" for c in needing):
        return
    ckpt = Path(run.config.out) / info.get("folder", "") / "checkpoint.pt"
    if info.get("folder") and ckpt.is_file():
        ckpt.unlink()
        info["checkpoint"] = None
        info["checkpoint_dropped"] = True
        write_json(ckpt.parent / TRAIN_SUMMARY, info)
        store = CellStore(run.config.out)
        for cell in cells:
            if run.records[cell.id]["status"] == "ok":
                store.save(cell, run.records[cell.id])


class _Eta:
    """Time left from the measured mean of training runs and of evaluations, counted apart."""

    def __init__(self, trainings: int, evaluations: int):
        self.left_train, self.left_eval = trainings, evaluations
        self.train_s: list[float] = []
        self.eval_s: list[float] = []

    def trained(self, seconds: float, skipped_evals: int = 0) -> None:
        self.left_train -= 1
        self.left_eval -= skipped_evals
        self.train_s.append(seconds)

    def evaluated(self, seconds: float) -> None:
        self.left_eval -= 1
        self.eval_s.append(seconds)

    def text(self) -> str:
        if self.left_train > 0 and not self.train_s:
            return "ETA after the first training run"
        rest = self.left_train * (sum(self.train_s) / len(self.train_s) if self.train_s else 0.0)
        rest += self.left_eval * (sum(self.eval_s) / len(self.eval_s) if self.eval_s else 0.0)
        minutes, seconds = divmod(int(round(rest)), 60)
        return f"ETA {minutes}:{seconds:02d}"


def run_cells(run: BenchRun, on_cell=None) -> None:
    """Run every planned cell that the cache does not have, saving results.json after each."""
    cfg = run.config
    todo = [c for c in run.plan.runnable() if run.records[c.id]["status"] != "ok"]
    t0 = time.perf_counter()
    save_results(run)
    # One group per model to build: (method, training view) for learned ones, the cell itself otherwise.
    groups: OrderedDict[tuple, list[Cell]] = OrderedDict()
    for cell in todo:
        gkey = (cell.method, cell.train_view) if cell.trains else (cell.method, cell.id)
        groups.setdefault(gkey, []).append(cell)
    bar = None
    if cfg.progress and todo:
        from tqdm.auto import tqdm

        # tqdm's own ETA averages over cells, but a training run costs minutes and an
        # evaluation seconds; the postfix carries an ETA from each kind's measured time.
        bar = tqdm(total=len(todo), desc="bench", unit="cell", dynamic_ncols=True, file=sys.stderr,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} cells [{elapsed}{postfix}]")
    eta = _Eta(sum(1 for cells in groups.values() if cells[0].trains), len(todo))

    def show(what: str) -> None:
        if bar is not None:
            bar.set_postfix_str(f"{what}; {eta.text()}")

    try:
        for cells in groups.values():
            first = cells[0]
            model, info = None, None
            show(f"train {first.method} on {first.train_view}" if first.trains else f"{first.method} on {first.test}")
            if first.trains:
                started = time.perf_counter()
                try:
                    model, info = _train(run, first)
                except Exception as exc:
                    _fail(run, cells, f"training failed: {type(exc).__name__}: {exc}", traceback.format_exc())
                    save_results(run)
                    eta.trained(time.perf_counter() - started, skipped_evals=len(cells))
                    if bar is not None:
                        bar.update(len(cells))
                    continue
                eta.trained(time.perf_counter() - started)
            for cell in cells:
                show(f"{cell.method} {cell.label}")
                started = time.perf_counter()
                _evaluate_cell(run, cell, model, info)
                eta.evaluated(time.perf_counter() - started)
                save_results(run)
                if on_cell is not None:
                    on_cell(run, cell)
                if bar is not None:
                    bar.update(1)
            if first.trains and info is not None and not cfg.preset.keep_checkpoints:
                _drop_checkpoint(run, first, cells, info)
            del model
    finally:
        if bar is not None:
            bar.close()
        run.timings["cells_s"] = time.perf_counter() - t0
        save_results(run)
