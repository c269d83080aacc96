"""``evaluate`` (one image) and ``evaluate_batch`` (a batch): named metrics from pred, gt and trimap.

With the compiled ops, one fused pass gives SAD/MSE/MAD and their -T variants
(and validates the inputs), then one op each gives Grad and Conn. Without
them (no build, ``MATTEZOO_DISABLE_EXT=1``, or CUDA tensors without the CUDA
build), each image goes through :mod:`mattezoo.metrics.reference`.
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from . import ops, reference
from .inputs import check_values, prepare, value_problem
from .names import DEFAULT_CONVENTION, resolve_metrics


def evaluate(pred, gt, trimap=None, metrics=None, convention: str = DEFAULT_CONVENTION) -> dict[str, float]:
    """Metrics of one image as ``{name: value}``.

    :param pred: predicted alpha, ``H×W`` (or ``1×H×W``, ``1×1×H×W``), float in
        [0,1] or uint8 0..255, numpy array or tensor on any device.
    :param gt: ground-truth alpha, same shape.
    :param trimap: uint8 ``H×W`` with 0 / 128 / 255, or None.
    :param metrics: names such as ``("SAD", "CONN")`` or ``"SAD,MSE"``; None
        for every metric the inputs allow (see :mod:`mattezoo.metrics.names`).
    :param convention: ``"whole-image"`` (P3M) or ``"trimap-region"`` (mmagic).
    """
    p, g, t = prepare(pred, gt, trimap)
    if p.shape[0] != 1:
        raise InputError(f"evaluate() takes one image but got a batch of {p.shape[0]}; use evaluate_batch()")
    return {name: float(v[0]) for name, v in _evaluate(p, g, t, metrics, convention).items()}


def evaluate_batch(pred, gt, trimap=None, metrics=None, convention: str = DEFAULT_CONVENTION) -> dict[str, torch.Tensor]:
    """Per-image metrics of a batch as ``{name: float64 CPU tensor [B]}`` (arguments as :func:`evaluate`)."""
    p, g, t = prepare(pred, gt, trimap)
    return _evaluate(p, g, t, metrics, convention)


def _evaluate(p, g, t, metrics, convention) -> dict[str, torch.Tensor]:
    names = resolve_metrics(metrics, convention, t is not None)
    if ops.compiled_available(p.device):
        return _compiled(p, g, t, names, convention)
    return _fallback(p, g, t, names, convention)


# ---------------------------------------------------------------- compiled ops


def _divide(num: torch.Tensor, den: torch.Tensor, empty: float) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(num, empty))


def _compiled(p, g, t, names, convention) -> dict[str, torch.Tensor]:
    B, H, W = p.shape
    sums = ops.alpha_errors(p, g, t).cpu()
    if bool((sums[:, ops.BAD_PRED :] > 0).any()):
        raise InputError(value_problem(p, g, t) or "invalid input values")
    n, unknown = float(H * W), sums[:, ops.UNKNOWN_COUNT]
    abs_sum, sq_sum = sums[:, ops.ABS_SUM], sums[:, ops.SQ_SUM]
    abs_f, sq_f = sums[:, ops.ABS_SUM_FORCED], sums[:, ops.SQ_SUM_FORCED]
    out: dict[str, torch.Tensor] = {}
    if convention == "whole-image":
        cheap = {
            "SAD": lambda: abs_sum / 1000.0,
            "MSE": lambda: sq_sum / n,
            "MAD": lambda: abs_sum / n,
            "SAD-T": lambda: abs_f / 1000.0,
            "MSE-T": lambda: _divide(sq_f, unknown, math.nan),  # P3M divides by zero here
            "MAD-T": lambda: _divide(abs_f, unknown, math.nan),
        }
        for name in names:
            if name in cheap:
                out[name] = cheap[name]()
            elif name == "GRAD":
                out[name] = ops.gradient_error(p, g, "scipy", "reflect").cpu() / 10.0
            elif name == "CONN":
                out[name] = ops.connectivity_error(p, g, None, assign_when_empty=False).cpu() / 1000.0
        return out
    # trimap-region: pred forced to the known values, sums over the unknown
    # region. The kernels force (and for Grad min-max normalise) while they
    # read, as full-size float64 temporaries would cost more than the metrics.
    for name in names:
        if name == "SAD":
            out[name] = abs_f / 1000.0
        elif name == "MSE":
            out[name] = _divide(sq_f, unknown, 0.0)  # mmagic reports 0 without unknown pixels
        elif name == "MAD":
            out[name] = _divide(abs_f, unknown, 0.0)
        elif name == "GRAD":
            grad = ops.gradient_error(p, g, "matlab", "replicate", t, force_known=True, normalize=True)
            out[name] = grad.cpu() / 1000.0
        elif name == "CONN":
            out[name] = ops.connectivity_error(p, g, t, assign_when_empty=True, force_known=True).cpu() / 1000.0
    return out


# ---------------------------------------------------------------- reference fallback


def _fallback(p, g, t, names, convention) -> dict[str, torch.Tensor]:
    check_values(p, g, t)
    pn, gn = p.cpu().numpy(), g.cpu().numpy()
    tn = t.cpu().numpy() if t is not None else None
    rows = [
        reference.evaluate_image(pn[b], gn[b], tn[b] if tn is not None else None, names, convention)
        for b in range(pn.shape[0])
    ]
    return {name: torch.tensor([r[name] for r in rows], dtype=torch.float64) for name in names}
