"""``mattezoo eval``: pairing, reports, and clear errors, end to end on temporary folders."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mattezoo.cli import main
from mattezoo.images import read_matte, write_png
from mattezoo.metrics import reference
from mattezoo.metrics.synthetic import synthetic_pair


@pytest.fixture
def dataset(tmp_path):
    pred_dir, gt_dir, tri_dir = tmp_path / "pred", tmp_path / "gt", tmp_path / "trimap"
    for d in (pred_dir, gt_dir, tri_dir):
        d.mkdir()
    for i, (h, w) in enumerate([(40, 56), (33, 47), (48, 48)]):
        pred, gt, trimap = synthetic_pair(h, w, seed=i, band=4.0)
        write_png(pred_dir / f"img{i}.png", pred)
        write_png(gt_dir / f"img{i}.png", gt)
        write_png(tri_dir / f"img{i}.png", trimap)
    return tmp_path


def expected(root, stems, convention="whole-image", trimaps=True):
    rows = {}
    for stem in stems:
        pred, gt = read_matte(root / "pred" / f"{stem}.png"), read_matte(root / "gt" / f"{stem}.png")
        tri = (read_matte(root / "trimap" / f"{stem}.png") * 255).round().astype(np.uint8) if trimaps else None
        names = None if trimaps else ("SAD", "MSE", "MAD", "GRAD", "CONN")
        rows[stem] = reference.evaluate_image(pred, gt, tri, names, convention)
    return rows


@pytest.mark.parametrize("convention", ["whole-image", "trimap-region"])
def test_eval_writes_table_json_and_csv(dataset, capsys, convention):
    out = dataset / "report"
    rc = main(["eval", str(dataset / "pred"), str(dataset / "gt"), "--trimap-dir", str(dataset / "trimap"),
               "--convention", convention, "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"convention: {convention}" in printed and "SAD" in printed and "CONN" in printed
    want = expected(dataset, ["img0", "img1", "img2"], convention)
    report = json.loads((out / "metrics.json").read_text())
    assert report["convention"] == convention and report["images"] == 3
    for rec in report["per_image"]:
        for name, value in want[rec["name"]].items():
            assert rec[name] == pytest.approx(value, rel=1e-4, abs=1e-12), (rec["name"], name)
    for name in report["metrics"]:
        assert report["mean"][name] == pytest.approx(np.mean([w[name] for w in want.values()]), rel=1e-4)
    with open(out / "metrics.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", *report["metrics"]]
    assert [r[0] for r in rows[1:]] == ["img0", "img1", "img2", "mean"]
    assert float(rows[-1][1]) == pytest.approx(report["mean"][report["metrics"][0]])


def test_eval_without_trimaps_and_explicit_paths(dataset, capsys):
    j, c = dataset / "a.json", dataset / "b.csv"
    assert main(["eval", str(dataset / "pred"), str(dataset / "gt"), "--json", str(j), "--csv", str(c),
                 "--metrics", "sad,conn"]) == 0
    report = json.loads(j.read_text())
    assert report["metrics"] == ["SAD", "CONN"]
    want = expected(dataset, ["img1"], trimaps=False)["img1"]
    rec = next(r for r in report["per_image"] if r["name"] == "img1")
    assert rec["SAD"] == pytest.approx(want["SAD"], rel=1e-6) and rec["CONN"] == pytest.approx(want["CONN"], rel=1e-4)
    assert c.exists()


def test_eval_missing_file_is_a_clear_error(dataset, capsys):
    (dataset / "pred" / "img1.png").unlink()
    rc = main(["eval", str(dataset / "pred"), str(dataset / "gt"), "--out", str(dataset / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no prediction" in err and "img1" in err and "paired by stem" in err
    assert not (dataset / "r").exists()


def test_eval_missing_trimap_and_extra_prediction(dataset, capsys):
    (dataset / "trimap" / "img2.png").unlink()
    assert main(["eval", str(dataset / "pred"), str(dataset / "gt"), "--trimap-dir", str(dataset / "trimap")]) == 2
    assert "no trimap" in capsys.readouterr().err
    write_png(dataset / "pred" / "extra.png", np.zeros((5, 5), np.float32))
    assert main(["eval", str(dataset / "pred"), str(dataset / "gt")]) == 2
    assert "no ground truth" in capsys.readouterr().err


def test_eval_size_mismatch_is_a_clear_error(dataset, capsys):
    write_png(dataset / "pred" / "img0.png", np.zeros((10, 12), np.float32))
    assert main(["eval", str(dataset / "pred"), str(dataset / "gt"), "--out", str(dataset / "r")]) == 2
    err = capsys.readouterr().err
    assert "img0.png is 10×12" in err and "40×56" in err


def test_eval_refuses_to_overwrite(dataset, capsys):
    out = dataset / "report"
    args = ["eval", str(dataset / "pred"), str(dataset / "gt"), "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    gt_file = dataset / "gt" / "img0.png"
    assert main(["eval", str(dataset / "pred"), str(dataset / "gt"), "--csv", str(gt_file), "--overwrite"]) == 2
    assert "input file" in capsys.readouterr().err
