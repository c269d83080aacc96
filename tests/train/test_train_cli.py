"""``mattezoo train`` end to end on a tiny synthetic set, with a toy method and its hook recipe."""

import json

import pytest
from toy_plugins import TINY, TinyRecipePlugin, ToyPlugin

from mattezoo.cli import main
from mattezoo.testing import registered_plugin

ARGS = ["--data", "synthetic", "--n-train", "4", "--n-test", "2", "--data-size", "64", "--size", "48",
        "--batch", "2", "--steps", "3", "--log-every", "1", "--no-progress"]


@pytest.fixture
def toys():
    with registered_plugin(ToyPlugin(TINY), "toys"), registered_plugin(TinyRecipePlugin(), "toy_recipes"):
        yield


def test_train_writes_checkpoint_log_and_evaluation(toys, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "tiny_net", "--train-on", "normal", *ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trained tiny_net on synthetic (normal) for 3 steps" in printed
    assert {"checkpoint.pt", "log.jsonl", "eval.json"} <= {p.name for p in out.iterdir()}
    report = json.loads((out / "eval.json").read_text())
    assert report["train_on"] == "normal" and set(report["tests"]) == {"B", "N"}
    for test in report["tests"].values():
        assert test["images"] == 2 and len(test["per_image"]) == 2
        assert test["headline"]["SAD"] >= 0
    steps = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["event"] == "step"] == [1, 2, 3]
    # The same command again resumes a finished run: nothing new is trained.
    assert main(["train", "--method", "tiny_net", "--train-on", "normal", *ARGS, "--out", str(out), "--no-eval"]) == 0
    again = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len([r for r in again if r["event"] == "step"]) == 3


def test_epochs_become_steps(toys, tmp_path, capsys):
    args = [a for a in ARGS if a not in ("--steps", "3")]
    assert main(["train", "--method", "tiny_net", *args, "--epochs", "1.5", "--no-eval", "--out", str(tmp_path)]) == 0
    assert "for 3 steps" in capsys.readouterr().out  # 1.5 × 4 images / batch 2


def test_errors_name_the_problem(toys, tmp_path, capsys):
    assert main(["train", "--method", "closed_form", *ARGS, "--out", str(tmp_path)]) == 2
    assert "has no training recipe" in capsys.readouterr().err
    assert main(["train", "--method", "p3m_nett", *ARGS, "--out", str(tmp_path)]) == 2
    assert "p3m_net" in capsys.readouterr().err
    assert main(["train", "--method", "tiny_net", *ARGS, "--amp", "off", "--data", "somewhere", "--out", str(tmp_path)]) == 2
    assert "synthetic" in capsys.readouterr().err
