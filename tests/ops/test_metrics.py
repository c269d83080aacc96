"""Matting metrics: compiled ops and fallback against the numpy/scipy/scikit-image reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from mattezoo.errors import InputError
from mattezoo.extension import has_ops
from mattezoo.metrics import (
    TRIMAP_REGION_METRICS,
    WHOLE_IMAGE_METRICS,
    MetricAccumulator,
    evaluate,
    evaluate_batch,
)
from mattezoo.metrics import ops as metric_ops
from mattezoo.metrics import reference
from mattezoo.metrics.filters import matlab_gaussgradient_taps, scipy_gaussian_taps
from mattezoo.metrics.synthetic import synthetic_pair
from mattezoo.testing import cpu_and_cuda

# The tolerances: 1e-6 relative for the sums, 1e-4 for Grad and Conn.
RTOL = {"SAD": 1e-6, "MSE": 1e-6, "MAD": 1e-6, "SAD-T": 1e-6, "MSE-T": 1e-6, "MAD-T": 1e-6, "GRAD": 1e-4, "CONN": 1e-4}
SHAPES = [(1, 1), (1, 9), (9, 1), (2, 3), (5, 5), (7, 12), (13, 17), (31, 8), (40, 33)]
KINDS = ["uniform", "quantized", "blocky", "smooth", "zeros", "ones", "equal"]

needs_ops = pytest.mark.skipif(not has_ops(), reason="mattezoo._C is not built")


def make_pair(kind: str, h: int, w: int, seed: int):
    """(pred, gt, trimap) float32/float32/uint8 with the flavour `kind`."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        pred, gt = rng.random((h, w)), rng.random((h, w))
    elif kind == "quantized":  # k/255, as read from PNG files, with lots of exact 0 and 1
        pred = np.clip(rng.integers(-80, 336, (h, w)), 0, 255) / 255.0
        gt = np.clip(rng.integers(-80, 336, (h, w)), 0, 255) / 255.0
    elif kind == "blocky":  # few levels: many components of equal size, so argmax ties
        levels = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
        pred, gt = levels[rng.integers(0, 5, (h, w))], levels[rng.integers(0, 5, (h, w))]
    elif kind == "smooth":
        p, g, _ = synthetic_pair(max(h, 8), max(w, 8), seed=seed, band=3.0)
        pred, gt = p[:h, :w], g[:h, :w]
    elif kind == "zeros":
        pred, gt = np.zeros((h, w)), rng.random((h, w))
    elif kind == "ones":
        pred, gt = np.ones((h, w)), np.ones((h, w))
    elif kind == "equal":
        pred = rng.random((h, w))
        gt = pred.copy()
    else:
        raise AssertionError(kind)
    trimap = np.array([0, 128, 255], dtype=np.uint8)[rng.integers(0, 3, (h, w))]
    return pred.astype(np.float32), gt.astype(np.float32), trimap


def assert_metrics_close(got: dict, want: dict, context=""):
    assert set(got) == set(want), context
    for name, w in want.items():
        g = got[name]
        if math.isnan(w):
            assert math.isnan(g), f"{name} {context}: got {g}, want NaN"
        else:
            assert g == pytest.approx(w, rel=RTOL[name], abs=1e-9), f"{name} {context}"


# ---------------------------------------------------------------- filters


def test_scipy_taps_reproduce_gaussian_filter1d():
    smooth, deriv = scipy_gaussian_taps(1.4)
    x = np.random.default_rng(0).random(50)
    from scipy.ndimage import correlate1d

    np.testing.assert_allclose(correlate1d(x, smooth, mode="reflect"), gaussian_filter1d(x, 1.4), atol=1e-15)
    np.testing.assert_allclose(correlate1d(x, deriv, mode="reflect"), gaussian_filter1d(x, 1.4, order=1), atol=1e-15)
    assert len(smooth) == 13  # radius int(4 * 1.4 + 0.5) = 6


def test_matlab_taps_match_mmagic_kernel():
    smooth, deriv = matlab_gaussgradient_taps(1.4)
    kernel = reference._matlab_gaussgradient_kernel(1.4)
    assert kernel.shape == (9, 9)
    np.testing.assert_allclose(np.outer(smooth, deriv), kernel, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- hand-computed cases


def test_sad_mse_mad_by_hand():
    pred = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)
    gt = np.array([[0.5, 0.5], [0.0, 0.25]], dtype=np.float32)
    trimap = np.array([[0, 128], [128, 255]], dtype=np.uint8)
    m = evaluate(pred, gt, trimap)
    assert m["SAD"] == pytest.approx(1.5 / 1000)
    assert m["MSE"] == pytest.approx((0.25 + 1.0) / 4)
    assert m["MAD"] == pytest.approx(1.5 / 4)
    # Forced pred: [[0, 0.5], [1, 1]] -> |d| = 0.5, 0, 1, 0.75; two unknown pixels.
    assert m["SAD-T"] == pytest.approx(2.25 / 1000)
    assert m["MSE-T"] == pytest.approx((0.25 + 1.0 + 0.5625) / 2)
    assert m["MAD-T"] == pytest.approx(2.25 / 2)


def test_conn_3x3_by_hand():
    # gt is 1 on the left column and the centre row; pred has 0.3 at (1,2)
    # and a false 0.6 at (0,1). Levels min(lev pred, lev gt): 10 on the L
    # {(0,0),(1,0),(2,0),(1,1)}, 3 at (1,2), 0 elsewhere. So for t <= 0.3 the
    # intersection is the L plus (1,2) (one 4-connected component), above it
    # the L alone; both are the largest component.
    # (1,2): first outside at t=0.4, l = 0.3: d_pred ~ 0 -> phi_pred = 1;
    #        d_gt = 0.7 -> phi_gt = 0.3                          |diff| = 0.7
    # (0,1): level 0, outside at t=0.1, l = 0: phi_pred = 1 - 0.6, phi_gt = 1  -> 0.6
    # every other pixel has pred == gt, hence equal phi.
    gt = np.array([[1, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=np.float32)
    pred = np.array([[1, 0.6, 0], [1, 1, 0.3], [1, 0, 0]], dtype=np.float32)
    assert reference.conn(pred, gt) == pytest.approx((0.7 + 0.6) / 1000)
    assert evaluate(pred, gt, metrics="CONN")["CONN"] == pytest.approx((0.7 + 0.6) / 1000)


def test_conn_tie_goes_to_first_component_in_raster_order():
    # Two 2-pixel components A (top) and B (bottom) at t = 0.1 .. 0.5, none above.
    # A: pred = gt = 0.5. B: pred = 1, gt = 0.5.
    # Largest = A (first in raster order): B gets l = 0 -> phi_pred = 0,
    # phi_gt = 0.5 on 2 pixels; A keeps l = 1 (P3M skips the empty t >= 0.6)
    # -> phi 1 for both. CONN = 2 * 0.5 / 1000.
    # Rows flipped, B comes first and is the largest: A gets l = 0 with
    # pred == gt, B gets l = 1 with d < 0.15 for both -> CONN = 0.
    gt = np.array([[0.5, 0.5, 0, 0], [0, 0, 0, 0], [0, 0, 0.5, 0.5]], dtype=np.float32)
    pred = np.array([[0.5, 0.5, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]], dtype=np.float32)
    for p, g, want in ((pred, gt, 1e-3), (pred[::-1].copy(), gt[::-1].copy(), 0.0)):
        assert reference.conn(p, g) == pytest.approx(want, abs=1e-15)
        assert evaluate(p, g, metrics="CONN")["CONN"] == pytest.approx(want, abs=1e-15)


def test_grad_is_zero_for_equal_mattes_and_positive_otherwise():
    pred, gt, _ = make_pair("smooth", 20, 30, 1)
    assert evaluate(gt, gt, metrics="GRAD")["GRAD"] == pytest.approx(0.0, abs=1e-15)
    assert evaluate(pred, gt, metrics="GRAD")["GRAD"] > 0


# ---------------------------------------------------------------- vs reference


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_whole_image_matches_reference(kind, shape):
    pred, gt, trimap = make_pair(kind, *shape, seed=hash((kind, shape)) % 1000)
    want = reference.evaluate_image(pred, gt, trimap, WHOLE_IMAGE_METRICS, "whole-image")
    assert_metrics_close(evaluate(pred, gt, trimap), want, f"{kind} {shape}")


@pytest.mark.parametrize("kind", ["uniform", "quantized", "blocky", "smooth", "zeros", "ones"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (11, 7), (24, 37)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_trimap_region_matches_reference(kind, shape):
    pred, gt, trimap = make_pair(kind, *shape, seed=7)
    want = reference.evaluate_image(pred, gt, trimap, TRIMAP_REGION_METRICS, "trimap-region")
    assert_metrics_close(evaluate(pred, gt, trimap, convention="trimap-region"), want, f"{kind} {shape}")


@pytest.mark.parametrize("convention", ["whole-image", "trimap-region"])
def test_empty_unknown_region(convention):
    pred, gt, _ = make_pair("uniform", 9, 11, 3)
    trimap = np.where(gt > 0.5, 255, 0).astype(np.uint8)
    got = evaluate(pred, gt, trimap, convention=convention)
    want = reference.evaluate_image(pred, gt, trimap, None, convention)
    assert_metrics_close(got, want)
    if convention == "whole-image":
        assert math.isnan(got["MSE-T"]) and math.isnan(got["MAD-T"])  # P3M divides by zero
    else:
        assert got["MSE"] == 0 and got["MAD"] == 0 and got["GRAD"] == 0 and got["CONN"] == 0


def test_no_trimap_gives_whole_image_metrics_only():
    pred, gt, _ = make_pair("quantized", 16, 16, 4)
    got = evaluate(pred, gt)
    assert tuple(got) == ("SAD", "MSE", "MAD", "GRAD", "CONN")
    assert_metrics_close(got, reference.evaluate_image(pred, gt, None, tuple(got)))


def test_realistic_pair_matches_reference():
    pred, gt, trimap = synthetic_pair(120, 160, seed=3)
    assert_metrics_close(evaluate(pred, gt, trimap), reference.evaluate_image(pred, gt, trimap))
    want = reference.evaluate_image(pred, gt, trimap, convention="trimap-region")
    assert_metrics_close(evaluate(pred, gt, trimap, convention="trimap-region"), want)


def test_float64_and_uint8_inputs():
    pred, gt, trimap = make_pair("quantized", 12, 10, 5)
    want = reference.evaluate_image(pred, gt, trimap)
    assert_metrics_close(evaluate(pred.astype(np.float64), gt.astype(np.float64), trimap), want)
    p8, g8 = np.round(pred * 255).astype(np.uint8), np.round(gt * 255).astype(np.uint8)
    assert_metrics_close(evaluate(p8, g8, trimap), want)


def test_batch_equals_images_and_shapes_are_accepted():
    rng = np.random.default_rng(6)
    pairs = [make_pair(k, 14, 19, int(rng.integers(1000))) for k in ("uniform", "blocky", "smooth")]
    pred = torch.from_numpy(np.stack([p for p, _, _ in pairs]))
    gt = torch.from_numpy(np.stack([g for _, g, _ in pairs]))
    trimap = torch.from_numpy(np.stack([t for _, _, t in pairs]))
    batch = evaluate_batch(pred, gt, trimap)
    batch4d = evaluate_batch(pred[:, None], gt[:, None], trimap[:, None])
    for b, (p, g, t) in enumerate(pairs):
        single = evaluate(p, g, t)
        for name, value in single.items():
            assert float(batch[name][b]) == pytest.approx(value, rel=1e-12, nan_ok=True)
            assert float(batch4d[name][b]) == pytest.approx(value, rel=1e-12, nan_ok=True)


@needs_ops
def test_fallback_path_agrees_with_compiled(monkeypatch):
    pred, gt, trimap = make_pair("smooth", 33, 27, 8)
    for convention in ("whole-image", "trimap-region"):
        compiled = evaluate(pred, gt, trimap, convention=convention)
        monkeypatch.setattr(metric_ops, "compiled_available", lambda device: False)
        fallback = evaluate(pred, gt, trimap, convention=convention)
        monkeypatch.undo()
        assert_metrics_close(compiled, fallback, convention)


@needs_ops
def test_portable_cpu_path_agrees_with_vectorised(monkeypatch):
    pred, gt, trimap = make_pair("uniform", 23, 45, 9)  # width not a multiple of 16
    fast = evaluate(pred, gt, trimap)
    monkeypatch.setenv("MATTEZOO_CPU_BASELINE", "1")
    portable = evaluate(pred, gt, trimap)
    assert portable["GRAD"] == pytest.approx(fast["GRAD"], rel=1e-6)  # float32 filter, FMA or not
    assert_metrics_close(portable, fast)


@needs_ops
def test_results_do_not_depend_on_thread_count():
    pred, gt, trimap = synthetic_pair(90, 70, seed=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = evaluate(pred, gt, trimap)
        torch.set_num_threads(max(2, threads))
        many = evaluate(pred, gt, trimap)
    finally:
        torch.set_num_threads(threads)
    assert one == many  # bitwise: per-row sums are added in a fixed order


# ---------------------------------------------------------------- accumulator


def test_accumulator_means_are_per_image_means():
    acc = MetricAccumulator()
    images = [make_pair(k, 10, 13, i) for i, k in enumerate(["uniform", "smooth", "blocky"])]
    # One trimap without unknown pixels: its MSE-T / MAD-T are undefined and skipped.
    p, g, _ = images[2]
    images[2] = (p, g, np.where(g > 0.5, 255, 0).astype(np.uint8))
    singles = [evaluate(p, g, t) for p, g, t in images]
    for p, g, t in images:
        acc.update(p, g, t)
    means, counts = acc.means(), acc.counts()
    for name in WHOLE_IMAGE_METRICS:
        vals = [s[name] for s in singles if not math.isnan(s[name])]
        assert means[name] == pytest.approx(sum(vals) / len(vals), rel=1e-12)
        assert counts[name] == len(vals)
    assert counts["MSE-T"] == 2 and counts["SAD"] == 3
    summary = acc.summary()
    assert summary["images"] == 3 and summary["convention"] == "whole-image"
    assert [r["name"] for r in summary["per_image"]] == ["0", "1", "2"]


def test_accumulator_takes_batches_and_refuses_mixed_trimaps():
    pred, gt, trimap = make_pair("uniform", 8, 8, 1)
    acc = MetricAccumulator(metrics="SAD,CONN")
    rows = acc.update(np.stack([pred, gt]), np.stack([gt, gt]), names=["a", "b"])
    assert rows[1] == {"SAD": 0.0, "CONN": 0.0}
    assert acc.means()["SAD"] == pytest.approx(reference.sad(pred, gt) / 2)
    acc2 = MetricAccumulator()
    acc2.update(pred, gt, trimap)
    with pytest.raises(InputError, match="trimap with every image"):
        acc2.update(pred, gt)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p, g, t: (p[:, :-1], g, t), "pred is 6×6 but gt is 6×7"),
        (lambda p, g, t: (p, g, t[:-1]), "trimap is 5×7"),
        (lambda p, g, t: (np.where(p > 0.5, np.nan, p).astype(np.float32), g, t), "NaN"),
        (lambda p, g, t: (p, g * 2, t), r"gt must lie in \[0,1\]"),
        (lambda p, g, t: (p - 1, g, t), r"pred must lie in \[0,1\]"),
        (lambda p, g, t: (p, g, np.where(t == 128, 100, t).astype(np.uint8)), "100"),
        (lambda p, g, t: (p, g, t.astype(np.float32) / 255), "integer array"),
        (lambda p, g, t: (p, g, t.astype(np.int32) + 300), "outside 0..255"),
        (lambda p, g, t: (p[None, None, None], g, t), "H×W, B×H×W"),
        (lambda p, g, t: (p.astype(np.int64), g, t), "float in"),
        (lambda p, g, t: ("pred.png", g, t), "torch.Tensor or a numpy array"),
        (lambda p, g, t: (p[:0], g[:0], None), "empty"),
    ],
)
def test_bad_input_raises_clear_error(change, match):
    pred, gt, trimap = make_pair("uniform", 6, 7, 0)
    pred, gt, trimap = change(pred, gt, trimap)
    with pytest.raises(InputError, match=match):
        evaluate(pred, gt, trimap)


def test_bad_names_and_conventions():
    pred, gt, trimap = make_pair("uniform", 5, 5, 0)
    with pytest.raises(InputError, match="unknown metric 'SADD'.*Did you mean 'SAD'"):
        evaluate(pred, gt, metrics=["SADD"])
    with pytest.raises(InputError, match="MSE-T needs a trimap"):
        evaluate(pred, gt, metrics="mse-t")
    with pytest.raises(InputError, match="unknown metric convention"):
        evaluate(pred, gt, trimap, convention="matlab")
    with pytest.raises(InputError, match="needs a trimap"):
        evaluate(pred, gt, convention="trimap-region")
    with pytest.raises(InputError, match="evaluate_batch"):
        evaluate(np.stack([pred, pred]), np.stack([gt, gt]))


@needs_ops
def test_ops_reject_bad_arguments():
    p = torch.rand(1, 4, 4)
    smooth, deriv = (torch.from_numpy(t) for t in scipy_gaussian_taps())
    with pytest.raises(ValueError, match="differs from pred dtype"):
        torch.ops.mattezoo.alpha_errors(p, p.double(), None)
    with pytest.raises(ValueError, match="antisymmetric"):
        torch.ops.mattezoo.gradient_error(p, p, smooth, smooth, 0, None)
    with pytest.raises(ValueError, match="border"):
        torch.ops.mattezoo.gradient_error(p, p, smooth, deriv, 5, None)
    with pytest.raises(ValueError, match="uint8"):
        torch.ops.mattezoo.connectivity_error(p, p, torch.zeros(1, 4, 4, dtype=torch.int32), False)


@needs_ops
def test_ops_pass_opcheck():
    pred, gt, trimap = (torch.from_numpy(x) for x in make_pair("quantized", 6, 5, 2))
    pred, gt, trimap = pred[None], gt[None], trimap[None]
    smooth, deriv = (torch.from_numpy(t) for t in scipy_gaussian_taps())
    tests = ("test_schema", "test_faketensor")
    torch.library.opcheck(torch.ops.mattezoo.alpha_errors, (pred, gt, trimap), test_utils=tests)
    metric_ops._register_fakes()
    torch.library.opcheck(torch.ops.mattezoo.gradient_error, (pred, gt, smooth, deriv, 0, None), test_utils=tests)
    torch.library.opcheck(torch.ops.mattezoo.connectivity_error, (pred, gt, trimap, True), test_utils=tests)
    matlab = [torch.from_numpy(t) for t in matlab_gaussgradient_taps()]
    torch.library.opcheck(
        torch.ops.mattezoo.gradient_error, (pred, gt, *matlab, 1, trimap, True, True), test_utils=tests
    )
    torch.library.opcheck(torch.ops.mattezoo.connectivity_error, (pred, gt, trimap, True, True), test_utils=tests)


def _forced(pred: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    return torch.where(trimap == 255, torch.ones_like(pred), torch.where(trimap == 0, torch.zeros_like(pred), pred))


def _min_max(x: torch.Tensor) -> torch.Tensor:
    """Per-image NORM_MINMAX in float64; a constant image becomes 0."""
    x = x.double()
    lo, hi = x.flatten(1).min(1).values, x.flatten(1).max(1).values
    span = hi - lo
    scale = torch.where(span > torch.finfo(torch.float64).eps, 1.0 / span, torch.zeros_like(span))
    return x * scale[:, None, None] + (-lo * scale)[:, None, None]


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_trimap_region_flags_equal_the_composed_inputs(device, dtype):
    """force_known / normalize inside the kernels equal forcing and normalising the inputs beforehand."""
    pairs = [make_pair(k, 41, 67, i) for i, k in enumerate(["smooth", "quantized", "ones", "blocky"])]
    pred, gt, trimap = (torch.from_numpy(np.stack([x[j] for x in pairs])).to(device) for j in range(3))
    pred, gt = pred.to(dtype), gt.to(dtype)
    forced = _forced(pred, trimap)
    for flags, inputs in (((True, True), (_min_max(forced), _min_max(gt))), ((True, False), (forced, gt))):
        got = metric_ops.gradient_error(pred, gt, "matlab", "replicate", trimap, *flags)
        want = metric_ops.gradient_error(*inputs, "matlab", "replicate", trimap)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    got = metric_ops.connectivity_error(pred, gt, trimap, assign_when_empty=True, force_known=True)
    want = metric_ops.connectivity_error(forced, gt, trimap, assign_when_empty=True)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)


@needs_ops
def test_trimap_region_flags_need_a_trimap():
    p = torch.rand(1, 4, 4)
    smooth, deriv = (torch.from_numpy(t) for t in matlab_gaussgradient_taps())
    with pytest.raises(ValueError, match="needs a trimap"):
        torch.ops.mattezoo.gradient_error(p, p, smooth, deriv, 1, None, True, False)
    with pytest.raises(ValueError, match="needs a trimap"):
        torch.ops.mattezoo.connectivity_error(p, p, None, True, True)


@needs_ops
@pytest.mark.parametrize("baseline", ["0", "1"])
def test_portrait_pair_matches_reference(monkeypatch, baseline):
    """A 150x260 portrait-like pair: long runs, many rows, and both CPU code paths of the level pass."""
    monkeypatch.setenv("MATTEZOO_CPU_BASELINE", baseline)
    pred, gt, trimap = synthetic_pair(150, 260, seed=6)
    for convention in ("whole-image", "trimap-region"):
        want = reference.evaluate_image(pred, gt, trimap, convention=convention)
        assert_metrics_close(evaluate(pred, gt, trimap, convention=convention), want, convention)


# ---------------------------------------------------------------- devices


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("convention", ["whole-image", "trimap-region"])
def test_device_matches_reference(device, convention):
    pairs = [make_pair(k, 37, 29, i) for i, k in enumerate(["smooth", "blocky", "quantized", "ones"])]
    pred = torch.from_numpy(np.stack([p for p, _, _ in pairs])).to(device)
    gt = torch.from_numpy(np.stack([g for _, g, _ in pairs])).to(device)
    trimap = torch.from_numpy(np.stack([t for _, _, t in pairs])).to(device)
    got = evaluate_batch(pred, gt, trimap, convention=convention)
    for b, (p, g, t) in enumerate(pairs):
        want = reference.evaluate_image(p, g, t, convention=convention)
        assert_metrics_close({k: float(v[b]) for k, v in got.items()}, want, f"{device} image {b}")


@pytest.mark.needs_cuda
def test_cuda_agrees_with_cpu_on_a_large_pair():
    pred, gt, trimap = synthetic_pair(540, 960, seed=4)
    cpu = evaluate(pred, gt, trimap)
    cuda = evaluate(torch.from_numpy(pred).cuda(), torch.from_numpy(gt).cuda(), torch.from_numpy(trimap).cuda())
    assert_metrics_close(cuda, cpu)
