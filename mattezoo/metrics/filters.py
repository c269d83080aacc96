"""Filter taps and thresholds shared by the compiled ops, the fallback and the reference.

Both gradient conventions are separable: a 2-D filter that differentiates along
one axis and smooths along the other. We hand the compiled op the two 1-D tap
vectors (in correlation order) plus a border rule, so one kernel serves both.
"""

from __future__ import annotations

import math

import numpy as np

GRAD_SIGMA = 1.4

# Connectivity thresholds t_0 = 0, t_1 = 0.1, ..., t_10 = 1.0. The official
# P3M and mmagic code build them with np.arange(0, 1.1, 0.1), whose 0.3, 0.6 and
# 0.7 are one ulp high in float64; the issue fixes them at i/10. The two agree
# for every float32 and every k/255 alpha (no such value lies inside that ulp).
CONN_THRESHOLDS = np.arange(11, dtype=np.float64) / 10.0
CONN_PHI_CUTOFF = 0.15  # phi(x) = 1 - d * [d >= 0.15], d = x - l

# Border rules of the gradient filter (the op takes the index).
BORDER_REFLECT = 0  # scipy 'reflect': half-sample symmetric, dcba|abcd|dcba
BORDER_REPLICATE = 1  # OpenCV BORDER_REPLICATE: aaaa|abcd|dddd
BORDERS = {"reflect": BORDER_REFLECT, "replicate": BORDER_REPLICATE}


def scipy_gaussian_taps(sigma: float = GRAD_SIGMA, truncate: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """(smoothing, first-derivative) taps of ``scipy.ndimage.gaussian_filter(..., order=)``.

    scipy samples exp(-x²/2σ²) on x = -r..r with r = int(truncate·σ + 0.5),
    normalises it to sum 1, and multiplies by -x/σ² for the first derivative.
    It then *correlates* with the reversed kernel (a convolution), so the taps
    returned here are reversed too: out[i] = Σ_k taps[k] · in[i + k - r].
    """
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x * x)
    phi /= phi.sum()
    deriv = -x / (sigma * sigma) * phi
    return phi[::-1].copy(), deriv[::-1].copy()


def matlab_gaussgradient_taps(sigma: float = GRAD_SIGMA, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """(smoothing, derivative) taps of mmagic's (MATLAB gaussgradient) 2-D filter.

    mmagic builds K[i, j] = g(i - h)·g'(j - h) on a (2h+1)² grid, with
    h = ceil(σ·sqrt(-2·ln(sqrt(2π)·σ·ε))), and divides K by its Frobenius norm.
    K is an outer product, so its norm is ‖g‖·‖g'‖ and the 1-D factors are the
    unit-norm g and g'. OpenCV's filter2D correlates, so no reversal here.
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma * sigma)) / (sigma * math.sqrt(2.0 * math.pi))
    dg = -x * g / (sigma * sigma)
    return g / np.linalg.norm(g), dg / np.linalg.norm(dg)
