"""The metric formulas, written literally with numpy, scipy, scikit-image and OpenCV.

This module is the test oracle of the compiled ops, the fallback when they are
not available, and the baseline of the speed benchmarks. It favours being
obviously right over being fast. Inputs are ``H×W`` arrays; everything is
computed in float64.

Two conventions (see :mod:`mattezoo.metrics`):

* ``"whole-image"``: P3M's ``core/evaluate.py``. SAD, MSE, MAD, Grad and Conn
  over the whole image; SAD-T, MSE-T, MAD-T after forcing the prediction to
  the trimap's known values.
* ``"trimap-region"``: mmagic/mmeval's matting metrics (the MATLAB benchmark
  code): the prediction is forced to the known values, errors are summed over
  the unknown region (SAD, MSE, MAD over the whole forced image, which is the
  same thing up to gt's deviation in the known regions), Grad uses min-max
  normalised alphas, MATLAB's gaussgradient filter and /1000.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.measure import label

from .filters import CONN_PHI_CUTOFF, CONN_THRESHOLDS, GRAD_SIGMA

UNKNOWN, FOREGROUND, BACKGROUND = 128, 255, 0


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def force_known(pred, trimap) -> np.ndarray:
    """The prediction with 1 where the trimap says foreground and 0 where it says background."""
    out = _f64(pred).copy()
    out[trimap == FOREGROUND] = 1.0
    out[trimap == BACKGROUND] = 0.0
    return out


# ---------------------------------------------------------------- whole image (P3M)


def sad(pred, gt) -> float:
    return float(np.abs(_f64(pred) - _f64(gt)).sum() / 1000.0)


def mse(pred, gt) -> float:
    diff = _f64(pred) - _f64(gt)
    return float((diff**2).sum() / diff.size)


def mad(pred, gt) -> float:
    diff = _f64(pred) - _f64(gt)
    return float(np.abs(diff).sum() / diff.size)


def sad_t(pred, gt, trimap) -> float:
    return sad(force_known(pred, trimap), gt)


def mse_t(pred, gt, trimap) -> float:
    """Σ(pred'−gt)² / #unknown; NaN when the trimap has no unknown pixel (P3M divides by zero)."""
    n = int((trimap == UNKNOWN).sum())
    diff = force_known(pred, trimap) - _f64(gt)
    return float((diff**2).sum() / n) if n else float("nan")


def mad_t(pred, gt, trimap) -> float:
    n = int((trimap == UNKNOWN).sum())
    diff = force_known(pred, trimap) - _f64(gt)
    return float(np.abs(diff).sum() / n) if n else float("nan")


def gradient_magnitude(alpha, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """|∇alpha| with Gaussian first-derivative filters, scipy's reflect border and truncate 4."""
    a = _f64(alpha)
    d0 = gaussian_filter(a, sigma, order=[1, 0])
    d1 = gaussian_filter(a, sigma, order=[0, 1])
    return np.sqrt(d0**2 + d1**2)


def grad(pred, gt) -> float:
    return float(((gradient_magnitude(pred) - gradient_magnitude(gt)) ** 2).sum() / 10.0)


def round_down_map(pred, gt, assign_when_empty: bool) -> np.ndarray:
    """The map l of the connectivity error.

    l starts at -1. For t_i = 0.1 .. 1.0, pixels outside the largest
    4-connected component of (pred ≥ t_i) ∧ (gt ≥ t_i) whose l is still -1 get
    t_{i-1}; what is left at -1 gets 1. Ties between equally large components
    go to the one met first in raster order (label order, as ``np.argmax`` over
    regionprops does). When the intersection is empty, P3M skips the threshold
    (``assign_when_empty=False``) while mmagic treats every pixel as outside.
    """
    p, g = _f64(pred), _f64(gt)
    l_map = np.full(p.shape, -1.0)
    for i in range(1, len(CONN_THRESHOLDS)):
        t = CONN_THRESHOLDS[i]
        labels = label((p >= t) & (g >= t), connectivity=1)
        sizes = np.bincount(labels.ravel())[1:]
        if sizes.size:
            omega = labels == int(np.argmax(sizes)) + 1
        elif assign_when_empty:
            omega = np.zeros(p.shape, dtype=bool)
        else:
            continue
        l_map[(l_map == -1) & ~omega] = CONN_THRESHOLDS[i - 1]
    l_map[l_map == -1] = 1.0
    return l_map


def _phi(alpha: np.ndarray, l_map: np.ndarray) -> np.ndarray:
    d = alpha - l_map
    return 1.0 - d * (d >= CONN_PHI_CUTOFF)


def conn(pred, gt) -> float:
    p, g = _f64(pred), _f64(gt)
    l_map = round_down_map(p, g, assign_when_empty=False)
    return float(np.abs(_phi(p, l_map) - _phi(g, l_map)).sum() / 1000.0)


# ---------------------------------------------------------------- trimap region (mmagic)


def region_sad(pred, gt, trimap) -> float:
    return sad(force_known(pred, trimap), gt)


def region_mse(pred, gt, trimap) -> float:
    """Σ(pred'−gt)² / #unknown, or 0 without unknown pixels (mmagic's rule)."""
    n = int((trimap == UNKNOWN).sum())
    return float(((force_known(pred, trimap) - _f64(gt)) ** 2).sum() / n) if n else 0.0


def region_mad(pred, gt, trimap) -> float:
    n = int((trimap == UNKNOWN).sum())
    return float(np.abs(force_known(pred, trimap) - _f64(gt)).sum() / n) if n else 0.0


def _matlab_gaussgradient_kernel(sigma: float, epsilon: float = 1e-2) -> np.ndarray:
    half = np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1)
    g = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -x * g / sigma**2
    kernel = np.outer(g, dg)  # rows smooth, columns differentiate
    return kernel / np.sqrt((kernel**2).sum())


def _minmax(alpha: np.ndarray) -> np.ndarray:
    out = np.zeros_like(alpha)
    cv2.normalize(alpha, out, 1.0, 0.0, cv2.NORM_MINMAX)
    return out


def region_gradient_magnitude(alpha, sigma: float = GRAD_SIGMA) -> np.ndarray:
    kx = _matlab_gaussgradient_kernel(sigma)
    a = _minmax(_f64(alpha))
    fx = cv2.filter2D(a, -1, kx, borderType=cv2.BORDER_REPLICATE)
    fy = cv2.filter2D(a, -1, np.ascontiguousarray(kx.T), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(fx**2 + fy**2)


def region_grad(pred, gt, trimap) -> float:
    err = (region_gradient_magnitude(force_known(pred, trimap)) - region_gradient_magnitude(gt)) ** 2
    return float(err[trimap == UNKNOWN].sum() / 1000.0)


def region_conn(pred, gt, trimap) -> float:
    p, g = force_known(pred, trimap), _f64(gt)
    l_map = round_down_map(p, g, assign_when_empty=True)
    err = np.abs(_phi(p, l_map) - _phi(g, l_map))
    return float(err[trimap == UNKNOWN].sum() / 1000.0)


# ---------------------------------------------------------------- one image, by name

WHOLE_IMAGE = {
    "SAD": lambda p, g, t: sad(p, g),
    "MSE": lambda p, g, t: mse(p, g),
    "MAD": lambda p, g, t: mad(p, g),
    "SAD-T": sad_t,
    "MSE-T": mse_t,
    "MAD-T": mad_t,
    "GRAD": lambda p, g, t: grad(p, g),
    "CONN": lambda p, g, t: conn(p, g),
}
TRIMAP_REGION = {
    "SAD": region_sad,
    "MSE": region_mse,
    "MAD": region_mad,
    "GRAD": region_grad,
    "CONN": region_conn,
}
BY_CONVENTION = {"whole-image": WHOLE_IMAGE, "trimap-region": TRIMAP_REGION}


def evaluate_image(pred, gt, trimap=None, metrics=None, convention: str = "whole-image") -> dict[str, float]:
    """Named metrics of one ``H×W`` pair (no input checks: callers check first)."""
    table = BY_CONVENTION[convention]
    names = list(table) if metrics is None else list(metrics)
    return {name: table[name](pred, gt, trimap) for name in names}
