"""evaluate_method: per-family scoring against an independent predict + evaluate loop."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from mattezoo import create_method, predict
from mattezoo.data import SyntheticP3M
from mattezoo.errors import InputError
from mattezoo.evaluation import evaluate_method
from mattezoo.metrics import evaluate
from mattezoo.testing import registered_plugin

from bench_toys import BenchToyPlugin


@pytest.fixture(scope="module")
def samples():
    return SyntheticP3M("P3M-500-P", 2, 48, 2)[:]


def test_trimap_free_scored_on_whole_image(samples):
    with registered_plugin(BenchToyPlugin(), "bench_toys"):
        net = create_method("tiny_net")
        result = evaluate_method(net, samples, "N", keep=1)
        expected = [evaluate(predict(net, s.normal), s.alpha, s.trimap) for s in samples]
    assert result.scope == "whole image" and result.view == "normal" and result.images == 2
    assert result.metrics == ["SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T", "GRAD", "CONN"]
    for name in result.metrics:
        assert math.isclose(result.means[name], np.mean([e[name] for e in expected]), rel_tol=1e-6), name
    assert result.headline == {m: result.means[m] for m in ("SAD", "MSE", "MAD")}
    assert [r["name"] for r in result.per_image] == [s.name for s in samples]
    assert all(r["seconds"] >= 0 for r in result.per_image)
    assert len(result.predictions) == 1 and result.predictions[0].alpha.shape == samples[0].alpha.shape
    assert result.to_dict()["means"]["SAD"] == result.means["SAD"]


def test_trimap_methods_get_the_trimap_and_unknown_region_headline(samples):
    result = evaluate_method("closed_form", samples, "blurred")
    sad_t = [evaluate(predict("closed_form", s.blurred, s.trimap), s.alpha, s.trimap)["SAD-T"] for s in samples]
    assert result.scope == "unknown region"
    assert math.isclose(result.headline["SAD"], float(np.mean(sad_t)), rel_tol=1e-6)
    assert result.headline["MSE"] == result.means["MSE-T"] and result.headline["MAD"] == result.means["MAD-T"]


def test_bad_inputs(samples):
    with pytest.raises(InputError, match="valid views"):
        evaluate_method("closed_form", samples, "sepia")
    with pytest.raises(InputError, match="no trimap"):
        evaluate_method("closed_form", [replace(samples[0], trimap=None)], "N")
    with pytest.raises(InputError, match="empty"):
        evaluate_method("closed_form", [], "N")
    with pytest.raises(InputError, match="keep"):
        evaluate_method("closed_form", samples, "N", keep=-1)
