"""The PPT bench end to end on a tiny preset: files, tables against cells, cache, failures, P3M-10k limits."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mattezoo.bench import BenchConfig, Preset, run_bench
from mattezoo.bench.tables import fmt
from mattezoo.data import SyntheticP3M, write_sample
from mattezoo.inference import predict
from mattezoo.metrics import evaluate
from mattezoo.testing import registered_plugin

from bench_toys import BenchToyPlugin

TINY = Preset(name="tiny", description="test preset", size=64, n_train=4, n_test=2, steps=2, batch=2, crop=32, lr=1e-2, keep=1)


@pytest.fixture
def toys():
    with registered_plugin(BenchToyPlugin(), "bench_toys"):
        yield


def _config(out: Path, methods, protocols, data="synthetic", preset=TINY) -> BenchConfig:
    return BenchConfig(preset=preset, methods=list(methods), protocols=list(protocols), data=data, device="cpu",
                       out=out, progress=False, argv=["test"])


def _cells(out: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["id"]: json.loads(p.read_text()) for p in (out / "cells").rglob("*.json")}


def test_tiny_preset_end_to_end(tmp_path, toys):
    out = tmp_path / "bench"
    run = run_bench(_config(out, ["closed_form", "tiny_net", "broken_keyer"], ["B:N", "N:N"]), echo=None)

    for name in ("report.md", "results.json", "results.csv", "record.json", "sad.png", "ppt_gap.png", "grid_closed_form.png", "grid_tiny_net.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    by_id = {c["id"]: c for c in results["cells"]}
    # Learned: one cell per protocol, plus the Table-4 cell on the other-people set.
    assert {i for i in by_id if i.startswith("tiny_net")} == {"tiny_net__B-N", "tiny_net__N-N", "tiny_net__B-NP"}
    # Classical: one run on the N test set fills both protocols.
    assert by_id["closed_form__untrained-N"]["protocols"] == ["B:N", "N:N"]
    assert all(by_id[i]["status"] == "ok" for i in by_id if not i.startswith("broken"))

    # The failing method is reported with its traceback; the others ran.
    broken = [c for c in results["cells"] if c["method"] == "broken_keyer"]
    assert broken and all(c["status"] == "failed" for c in broken)
    assert "broken_keyer always fails" in broken[0]["traceback"]
    assert "broken_keyer" in (out / "report.md").read_text()

    # Every finished cell is cached on disk with the values results.json reports.
    cached = _cells(out)
    for cid, cell in by_id.items():
        if cell["status"] == "ok":
            assert cached[cid]["eval"]["means"] == cell["eval"]["means"]

    # The classical cell's numbers match an independent evaluation: predict + metrics.evaluate.
    test = SyntheticP3M("P3M-500-P", 2, 64, 0)
    sads = [evaluate(predict("closed_form", s.normal, s.trimap), s.alpha, s.trimap)["SAD-T"] for s in test]
    assert math.isclose(by_id["closed_form__untrained-N"]["eval"]["headline"]["SAD"], float(np.mean(sads)), rel_tol=1e-6)

    # Tables and CSV agree with the cells.
    report = (out / "report.md").read_text()
    for cid in ("closed_form__untrained-N", "tiny_net__B-N", "tiny_net__N-N"):
        head = by_id[cid]["eval"]["headline"]
        assert fmt("SAD", head["SAD"]) in report and fmt("MSE", head["MSE"]) in report
    with open(out / "results.csv", newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert float(rows["tiny_net__N-N"]["SAD"]) == by_id["tiny_net__N-N"]["eval"]["headline"]["SAD"]
    gap = by_id["tiny_net__B-N"]["eval"]["headline"]["SAD"] - by_id["tiny_net__N-N"]["eval"]["headline"]["SAD"]
    assert f"{gap:+.3f}" in report
    # Trimap-free cells are scored on the whole image, classical ones on the unknown region.
    assert by_id["tiny_net__B-N"]["eval"]["scope"] == "whole image"
    assert by_id["closed_form__untrained-N"]["eval"]["scope"] == "unknown region"
    record = json.loads((out / "record.json").read_text())
    assert record["seed"] == 0 and record["versions"]["torch"] and record["argv"] == ["test"]

    # A rerun with the same arguments loads every finished cell; the failed one runs again.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")}
    again = run_bench(_config(out, ["closed_form", "tiny_net", "broken_keyer"], ["B:N", "N:N"]), echo=None)
    assert all(r["cached"] for r in again.records.values() if r["status"] == "ok")
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "results.json").read_text())["cells"][0]["id"]

    # A change that changes results (training steps) reruns the learned cells only.
    longer = run_bench(_config(out, ["closed_form", "tiny_net"], ["B:N", "N:N"], preset=Preset(**{**TINY.to_dict(), "steps": 3})), echo=None)
    assert not longer.records["tiny_net__B-N"]["cached"] and longer.records["tiny_net__B-N"]["train"]["steps"] == 3
    assert longer.records["closed_form__untrained-N"]["cached"]
    assert run.records["tiny_net__B-N"]["key"] != longer.records["tiny_net__B-N"]["key"]


def _p3m_tree(root: Path, originals: bool) -> None:
    """A tiny P3M-10k layout: the release has no normal training images unless ``originals``."""
    for split, n in (("train", 3), ("P3M-500-P", 2), ("P3M-500-NP", 2)):
        for s in SyntheticP3M(split, n, 64, 1):
            if split != "P3M-500-NP" and not originals:
                s.normal = None
            if split == "P3M-500-NP":
                s.blurred = None
            write_sample(root, split, s)


def test_p3m10k_release_runs_only_blurred_training(tmp_path, toys):
    data = tmp_path / "p3m"
    _p3m_tree(data, originals=False)
    out = tmp_path / "bench"
    run = run_bench(_config(out, ["closed_form", "tiny_net"], ["B:B", "B:N", "N:B", "N:N"], data=f"p3m10k:{data}"), echo=None)
    recs = run.records
    assert recs["tiny_net__B-B"]["status"] == "ok" and recs["tiny_net__B-N"]["status"] == "ok"
    assert recs["tiny_net__B-N"]["test_label"] == "P3M-500-NP"
    for cid in ("tiny_net__N-B", "tiny_net__N-N"):
        assert recs[cid]["status"] == "unavailable"
        assert "normal originals the release lacks" in recs[cid]["reason"]
    report = (out / "report.md").read_text()
    assert "needs normal originals the release lacks" in report
    # On P3M-10k the paper's numbers are printed beside ours (closed-form, Table 1, P3M-500-P blurred).
    assert "closed_form (paper)" in report and "9.575" in report
    assert not (out / "runs" / "tiny_net" / "normal").exists()


def test_p3m10k_with_originals_runs_all_protocols(tmp_path, toys):
    data = tmp_path / "p3m"
    _p3m_tree(data, originals=True)
    run = run_bench(_config(tmp_path / "bench", ["tiny_net"], ["N:N"], data=f"p3m10k:{data}"), echo=None)
    assert run.records["tiny_net__N-N"]["status"] == "ok"
    assert run.records["tiny_net__N-N"]["test_label"] == "P3M-500-P (normal)"


def test_killed_run_leaves_valid_results_and_resumes(tmp_path, toys):
    from mattezoo.bench.runner import prepare, run_cells

    out = tmp_path / "bench"
    config = _config(out, ["closed_form", "tiny_net"], ["B:B"])
    run = prepare(config)

    def interrupt(_run, _cell):
        raise KeyboardInterrupt  # as Ctrl-C after the first finished cell

    with pytest.raises(KeyboardInterrupt):
        run_cells(run, on_cell=interrupt)
    partial = json.loads((out / "results.json").read_text())
    done = [c["id"] for c in partial["cells"] if c["status"] == "ok"]
    assert len(done) == 1 and len(partial["cells"]) == len(run.plan.cells) > 1

    resumed = run_bench(config, echo=None)
    assert resumed.records[done[0]]["cached"]
    assert all(r["status"] == "ok" for r in resumed.records.values())
    assert sum(r["cached"] for r in resumed.records.values()) == 1


def test_learned_trimap_based_method_gets_table_2(tmp_path, toys):
    out = tmp_path / "bench"
    run = run_bench(_config(out, ["guided_net"], ["N:B", "N:N"]), echo=None)
    cell = run.records["guided_net__N-B"]
    assert cell["status"] == "ok" and cell["trains"] and cell["eval"]["scope"] == "unknown region"
    assert cell["eval"]["headline"]["SAD"] == cell["eval"]["means"]["SAD-T"]
    report = (out / "report.md").read_text()
    assert "Table 2 shape" in report and "Table 3 shape" not in report and "Table 1 shape" not in report
    assert fmt("SAD", cell["eval"]["headline"]["SAD"]) in report
