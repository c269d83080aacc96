"""Foreground colour estimation from an image and its alpha matte.

A cutout ``RGBA = (F, alpha)`` needs the foreground colour ``F`` of the
compositing equation ``I = alpha F + (1 - alpha) B``; taking ``F = I`` leaves the
old background bleeding through every semi-transparent pixel.
:func:`estimate_foreground` follows Germer et al. 2021, "Fast multi-level
foreground estimation" (as pymatting's ``estimate_foreground_ml``): a 2×2
least-squares problem per pixel with a smoothness term weighted by the alpha
gradient, solved coarse to fine. The compiled ``mattezoo::estimate_foreground_ml``
sweeps red-black in parallel (CPU threads, or one CUDA thread per pixel for
CUDA tensors); :func:`estimate_foreground_reference` is the same algorithm in
NumPy (fallback without the extension, and the tests' oracle).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InputError
from ..images import check_alpha
from ..ops._native import native_for, op_loaded
from .trimap import as_float_image


def _check_options(regularization, n_small_iterations, n_big_iterations, small_size, gradient_weight) -> None:
    for name, value in (("n_small_iterations", n_small_iterations), ("n_big_iterations", n_big_iterations), ("small_size", small_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{name} must be an int >= 0, got {value!r}")
    if not regularization >= 0 or not gradient_weight >= 0:
        raise InputError(f"regularization and gradient_weight must be >= 0, got {regularization!r} and {gradient_weight!r}")
    if regularization == 0 and gradient_weight == 0:
        raise InputError("regularization and gradient_weight cannot both be 0: the per-pixel systems would be singular")


def _check(image, alpha, *options):
    image = as_float_image(image).astype(np.float32)
    alpha = check_alpha(alpha, image.shape[:2])
    _check_options(*options)
    return np.ascontiguousarray(image), np.ascontiguousarray(alpha, dtype=np.float32)


def estimate_foreground(image, alpha, *, regularization: float = 1e-5, n_small_iterations: int = 10,
                        n_big_iterations: int = 2, small_size: int = 32, gradient_weight: float = 1.0,
                        return_background: bool = False):
    """Foreground (and background) colours of ``image`` given its matte ``alpha``.

    :param image: ``H×W×3`` RGB, float in [0,1] or uint8: a NumPy array, or a
        torch tensor (CPU or CUDA; the compiled kernel of its device runs).
    :param alpha: ``H×W`` matte, float in [0,1] or uint8, of the same kind
        (and device) as ``image``.
    :param regularization: ε, the constant part of the smoothness weight (paper: 1e-5).
    :param n_small_iterations: sweeps on levels no larger than ``small_size`` (paper: 10).
    :param n_big_iterations: sweeps on the larger levels (paper: 2).
    :param small_size: side length below which a level counts as small (paper: 32).
    :param gradient_weight: weight of ``|alpha_i - alpha_j|`` in the smoothness term (paper: 1).
    :param return_background: also return the background estimate.
    :return: ``F`` (``H×W×3`` float32 in [0,1], an array or a tensor on the
        input's device, like the input), or ``(F, B)``.
    """
    options = (regularization, n_small_iterations, n_big_iterations, small_size, gradient_weight)
    if isinstance(image, torch.Tensor) or isinstance(alpha, torch.Tensor):
        fg, bg = _estimate_tensors(image, alpha, *options)
        return (fg, bg) if return_background else fg
    args = _check(image, alpha, *options)
    if op_loaded("estimate_foreground_ml"):
        fg, bg = torch.ops.mattezoo.estimate_foreground_ml(torch.from_numpy(args[0]), torch.from_numpy(args[1]), *_op_options(*options))
        fg, bg = fg.numpy(), bg.numpy()
    else:
        fg, bg = _estimate_reference(*args, *options)
    return (fg, bg) if return_background else fg


def _op_options(regularization, n_small_iterations, n_big_iterations, small_size, gradient_weight):
    return float(regularization), int(n_small_iterations), int(n_big_iterations), int(small_size), float(gradient_weight)


def _check_tensors(image, alpha, *options) -> tuple[torch.Tensor, torch.Tensor]:
    """The tensor form of :func:`_check`: float32 ``H×W×3`` image and ``H×W`` alpha, on their device."""
    for name, value in (("image", image), ("alpha", alpha)):
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{name} must be a torch tensor like the other input, got {type(value).__name__}")
    if image.device != alpha.device:
        raise InputError(f"image and alpha must be on the same device, got {image.device} and {alpha.device}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must have shape H×W×3 (RGB), got {tuple(image.shape)}")
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[..., 0]
    if alpha.ndim != 2 or alpha.shape != image.shape[:2]:
        raise InputError(f"alpha must have shape H×W = {tuple(image.shape[:2])} like the image, got {tuple(alpha.shape)}")
    checked = []
    for name, value in (("image", image), ("alpha", alpha)):
        if value.dtype == torch.uint8:
            checked.append(value.float() / 255.0)
            continue
        if not value.is_floating_point():
            raise InputError(f"{name} must be float in [0,1] or uint8, got dtype {value.dtype}")
        value = value.detach().float()
        if value.numel():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise InputError(f"{name} contains {bad} NaN or infinite values")
            low, high = float(value.min()), float(value.max())
            if low < 0 or high > 1:
                raise InputError(f"{name} must lie in [0,1], got values in [{low:.4g}, {high:.4g}]")
        checked.append(value.contiguous())
    _check_options(*options)
    return checked[0], checked[1]


def _estimate_tensors(image, alpha, *options) -> tuple[torch.Tensor, torch.Tensor]:
    image, alpha = _check_tensors(image, alpha, *options)
    if native_for("estimate_foreground_ml", image.device):
        return torch.ops.mattezoo.estimate_foreground_ml(image, alpha, *_op_options(*options))
    # No kernel for this device (a CPU-only build, or MATTEZOO_DISABLE_EXT):
    # estimate on the CPU and hand the result back on the input's device.
    fg, bg = estimate_foreground(image.cpu().numpy(), alpha.cpu().numpy(), **dict(zip(_OPTION_NAMES, options)),
                                 return_background=True)
    return torch.from_numpy(fg).to(image.device), torch.from_numpy(bg).to(image.device)


_OPTION_NAMES = ("regularization", "n_small_iterations", "n_big_iterations", "small_size", "gradient_weight")


def estimate_foreground_reference(image, alpha, *, regularization: float = 1e-5, n_small_iterations: int = 10,
                                  n_big_iterations: int = 2, small_size: int = 32, gradient_weight: float = 1.0):
    """:func:`estimate_foreground` in NumPy; returns ``(F, B)``."""
    args = _check(image, alpha, regularization, n_small_iterations, n_big_iterations, small_size, gradient_weight)
    return _estimate_reference(*args, regularization, n_small_iterations, n_big_iterations, small_size, gradient_weight)


def _resize_nearest(src: np.ndarray, height: int, width: int) -> np.ndarray:
    ys = np.minimum(np.arange(height) * src.shape[0] // height, src.shape[0] - 1)
    xs = np.minimum(np.arange(width) * src.shape[1] // width, src.shape[1] - 1)
    return src[ys[:, None], xs[None, :]]


def _estimate_reference(image, alpha, regularization, n_small, n_big, small_size, gradient_weight):
    h0, w0, _ = image.shape
    reg, gw = np.float32(regularization), np.float32(gradient_weight)
    fg_prev = (image[alpha > 0.9].sum(axis=0, dtype=np.float64) / ((alpha > 0.9).sum() + 1e-5)).astype(np.float32)[None, None]
    bg_prev = (image[alpha < 0.1].sum(axis=0, dtype=np.float64) / ((alpha < 0.1).sum() + 1e-5)).astype(np.float32)[None, None]
    n_levels = math.ceil(math.log2(max(h0, w0)))
    for level in range(n_levels + 1):
        t = level / n_levels if n_levels else 1.0
        width, height = max(1, round(w0**t)), max(1, round(h0**t))
        img, alp = _resize_nearest(image, height, width), _resize_nearest(alpha, height, width)
        fg, bg = _resize_nearest(fg_prev, height, width).copy(), _resize_nearest(bg_prev, height, width).copy()
        parity = (np.arange(height)[:, None] + np.arange(width)[None, :]) % 2
        # The four neighbours with clamped borders, as index arrays.
        ys, xs = np.arange(height), np.arange(width)
        neighbours = [
            (ys[:, None], np.maximum(xs - 1, 0)[None, :]), (ys[:, None], np.minimum(xs + 1, width - 1)[None, :]),
            (np.maximum(ys - 1, 0)[:, None], xs[None, :]), (np.minimum(ys + 1, height - 1)[:, None], xs[None, :]),
        ]
        a0 = alp
        a1 = 1 - a0
        weights = [reg + gw * np.abs(a0 - alp[ny, nx]) for ny, nx in neighbours]
        a00 = a0 * a0 + sum(weights)
        a11 = a1 * a1 + sum(weights)
        a01 = a0 * a1
        inv_det = 1 / (a00 * a11 - a01 * a01)
        n_iter = n_small if (width <= small_size and height <= small_size) else n_big
        for _ in range(n_iter):
            for colour in (0, 1):
                b0 = a0[..., None] * img + sum(w[..., None] * fg[ny, nx] for w, (ny, nx) in zip(weights, neighbours))
                b1 = a1[..., None] * img + sum(w[..., None] * bg[ny, nx] for w, (ny, nx) in zip(weights, neighbours))
                new_fg = np.clip(inv_det[..., None] * (a11[..., None] * b0 - a01[..., None] * b1), 0, 1)
                new_bg = np.clip(inv_det[..., None] * (a00[..., None] * b1 - a01[..., None] * b0), 0, 1)
                mask = parity == colour
                fg[mask], bg[mask] = new_fg[mask], new_bg[mask]
        fg_prev, bg_prev = fg, bg
    return fg_prev.astype(np.float32), bg_prev.astype(np.float32)
