"""Thin calls into the compiled metric ops (``torch.ops.mattezoo``), and their fake kernels.

The ops return raw per-image float64 sums; :mod:`mattezoo.metrics.evaluate`
turns them into metrics. Shapes: pred, gt ``[B,H,W]`` float32/float64,
trimap ``[B,H,W]`` uint8 or None.
"""

from __future__ import annotations

import functools

import torch

from ..extension import has_cuda_ops, has_ops
from .filters import BORDERS, matlab_gaussgradient_taps, scipy_gaussian_taps

# Columns of alpha_errors (csrc/ops/matting_metrics.h, AlphaErrorColumn).
ABS_SUM, SQ_SUM, ABS_SUM_FORCED, SQ_SUM_FORCED, UNKNOWN_COUNT, BAD_PRED, BAD_GT, BAD_TRIMAP = range(8)
ALPHA_ERROR_COLUMNS = 8


def compiled_available(device: torch.device) -> bool:
    """Whether the compiled ops serve tensors on ``device``."""
    if device.type == "cpu":
        return has_ops()
    return device.type == "cuda" and has_cuda_ops()


@functools.cache
def _register_fakes() -> None:
    # Shapes only, so that torch.compile and meta tensors can trace through the ops.
    @torch.library.register_fake("mattezoo::alpha_errors")
    def _alpha_errors_fake(pred, gt, trimap):
        return pred.new_empty((pred.shape[0], ALPHA_ERROR_COLUMNS), dtype=torch.float64)

    @torch.library.register_fake("mattezoo::gradient_error")
    def _gradient_error_fake(pred, gt, smooth_taps, deriv_taps, border, trimap, force_known=False, normalize=False):
        return pred.new_empty((pred.shape[0],), dtype=torch.float64)

    @torch.library.register_fake("mattezoo::connectivity_error")
    def _connectivity_error_fake(pred, gt, trimap, assign_when_empty, force_known=False):
        return pred.new_empty((pred.shape[0],), dtype=torch.float64)


def _ops():
    _register_fakes()
    return torch.ops.mattezoo


@functools.cache
def _taps(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    smooth, deriv = scipy_gaussian_taps() if kind == "scipy" else matlab_gaussgradient_taps()
    return torch.from_numpy(smooth), torch.from_numpy(deriv)


def alpha_errors(pred, gt, trimap) -> torch.Tensor:
    return _ops().alpha_errors(pred, gt, trimap)


def gradient_error(
    pred, gt, kind: str, border: str, trimap=None, force_known: bool = False, normalize: bool = False
) -> torch.Tensor:
    """Σ(|∇pred|−|∇gt|)² per image; ``kind`` "scipy" or "matlab" taps, ``border`` "reflect" or "replicate".

    ``force_known`` sets pred to 1 / 0 where ``trimap`` is 255 / 0 and
    ``normalize`` min-max scales each image of that pred and of gt to [0, 1]
    (mmagic's trimap-region Grad), inside the kernel, without full-size temporaries.
    """
    smooth, deriv = _taps(kind)
    return _ops().gradient_error(pred, gt, smooth, deriv, BORDERS[border], trimap, force_known, normalize)


def connectivity_error(pred, gt, trimap=None, assign_when_empty: bool = False, force_known: bool = False) -> torch.Tensor:
    """Σ|φ(pred)−φ(gt)| per image; ``force_known`` sets pred to 1 / 0 where ``trimap`` is 255 / 0 first."""
    return _ops().connectivity_error(pred, gt, trimap, assign_when_empty, force_known)
