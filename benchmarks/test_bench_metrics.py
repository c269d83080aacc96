"""pytest-benchmark suites for the matting metrics: compiled ops next to the numpy reference.

Groups ``op:alpha_errors`` (SAD/MSE/MAD and -T in one pass), ``op:gradient_error``,
``op:connectivity_error`` and ``op:matting_metrics`` (the whole suite). Each case
checks its metrics against the reference before timing. The pair is 270×480 so
that a plain ``pytest`` smoke run stays quick; ``speed_metrics.py`` prints the
1080×1920 ratios.
"""

from __future__ import annotations

import pytest
import torch

from mattezoo.extension import has_cuda_ops, has_ops
from mattezoo.metrics import evaluate, evaluate_batch, reference
from mattezoo.metrics.synthetic import synthetic_pair

H, W = 270, 480
CHEAP = ("SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T")
GROUPS = {"op:alpha_errors": CHEAP, "op:gradient_error": ("GRAD",), "op:connectivity_error": ("CONN",)}
needs_ops = pytest.mark.skipif(not has_ops(), reason="mattezoo._C is not built")
needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and has_cuda_ops()), reason="needs a CUDA device and the CUDA build of mattezoo._C"
)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(H, W, seed=1)


def _check(got: dict, want: dict) -> None:
    for name, value in want.items():
        rel = 1e-6 if name in CHEAP else 1e-4
        assert got[name] == pytest.approx(value, rel=rel), name


def _reference(pred, gt, trimap, names):
    return reference.evaluate_image(pred, gt, trimap, names)


@pytest.mark.parametrize("impl", [pytest.param("mattezoo", marks=needs_ops), "reference"])
@pytest.mark.parametrize("group", list(GROUPS))
def test_metric_ops(benchmark, pair, group, impl):
    benchmark.group = group
    pred, gt, trimap = pair
    names = GROUPS[group]
    want = _reference(pred, gt, trimap, names)
    if impl == "mattezoo":
        p, g, t = (torch.from_numpy(x) for x in pair)
        fn = lambda: evaluate(p, g, t, metrics=names)  # noqa: E731
    else:
        fn = lambda: _reference(pred, gt, trimap, names)  # noqa: E731
    _check(fn(), want)
    benchmark(fn)


@pytest.mark.benchmark(group="op:matting_metrics")
@pytest.mark.parametrize("convention", ["whole-image", "trimap-region"])
@pytest.mark.parametrize("impl", [pytest.param("mattezoo", marks=needs_ops), "reference"])
def test_metric_suite(benchmark, pair, convention, impl):
    pred, gt, trimap = pair
    want = reference.evaluate_image(pred, gt, trimap, convention=convention)
    if impl == "mattezoo":
        p, g, t = (torch.from_numpy(x) for x in pair)
        fn = lambda: evaluate(p, g, t, convention=convention)  # noqa: E731
    else:
        fn = lambda: reference.evaluate_image(pred, gt, trimap, convention=convention)  # noqa: E731
    _check(fn(), want)
    benchmark(fn)


@needs_cuda
@pytest.mark.benchmark(group="op:matting_metrics")
def test_metric_suite_cuda_batch(benchmark, pair):
    pred, gt, trimap = pair
    want = reference.evaluate_image(pred, gt, trimap)
    batch = 8
    p, g, t = (torch.from_numpy(x).cuda().expand(batch, -1, -1).contiguous() for x in pair)

    def fn():
        out = evaluate_batch(p, g, t)
        torch.cuda.synchronize()
        return out

    got = fn()
    _check({k: float(v[batch - 1]) for k, v in got.items()}, want)
    benchmark.pedantic(fn, rounds=10, warmup_rounds=2)
