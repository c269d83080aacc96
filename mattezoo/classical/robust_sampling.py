"""Building blocks of robust matting (Wang & Cohen, "Optimized Color Sampling for Robust Matting", CVPR 2007).

The plugin ``mattezoo_methods.robust`` chains them:

1. :func:`sparse_boundary_samples`: the candidate samples, known pixels on the
   boundary of the foreground and of the background region, thinned to one
   per ``spacing × spacing`` cell so that a pixel's nearest samples spread
   along the boundary instead of bunching up at its closest point.
2. :func:`nearest_boundary_samples`: each unknown pixel's ``k`` spatially
   nearest samples of each region (the compiled KD-tree ``knn_search``).
3. :func:`pair_confidences`: every (F, B) pair's alpha, the projection of the
   pixel colour ``C`` onto the F-B line, and its confidence (paper eqs. 2-5)

       R_d = |C - (α̂F + (1-α̂)B)| / |F - B|,
       w(F_i) = 1 - exp(-|F_i - C|² / D_F²),  D_F = min_i |F_i - C|  (likewise B),
       f = exp(-R_d² · w(F_i) · w(B_j) / σ²).

   The paper's weight, as the public re-implementations we read transcribe
   its eq. 4 (the paper's own text was not available to us), is
   ``w(F_i) = exp(-|F_i - C|² / D_F²)``. Read literally,
   that weight shrinks the penalty of samples *unlike* ``C``: a pair of two
   samples far from ``C`` in colour scores a confidence near 1 whatever its
   fit, and (measured on the shared test composites) the sampled matte is
   then no better than the trimap's 0.5 guess. The complement
   ``1 - exp(...)`` keeps the printed Gaussian and ``D_F`` and lets samples
   similar to ``C`` raise the confidence, as descriptions of the method have
   it (the nearest colour weighs 1 - 1/e, far colours up to 1).
   ``color_weight="printed"`` selects the literal form.

4. :func:`robust_estimates`: per pixel the mean alpha and mean confidence of
   the ``n_best`` most confident pairs.
5. :func:`virtual_node_weights`: the edge weights to the foreground and
   background terminals of the random-walk solve,
   ``W_F = γ[f α̂ + (1-f) δ(α̂ > 0.5)]``, ``W_B = γ[f (1-α̂) + (1-f) δ(α̂ < 0.5)]``.

Everything is vectorised NumPy over chunks of pixels; colours are RGB in
[0,1] (the confidences are ratios of colour distances, so the colour scale
does not matter). Pixels and samples are raster indices ``y * W + x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .knn_search import knn_search
from .sampling import BACKGROUND, FOREGROUND, UNKNOWN, _index_array, _labels, boundary_samples
from .trimap import as_float_image

#: Added to |F - B|² before dividing, so that a pair of equal colours gives a
#: finite (huge) distance ratio instead of 0/0.
PAIR_GUARD = 1e-10
#: Floor of D² in w(F) = exp(-|F - C|² / D²): a pixel whose colour equals a
#: sample's gets w = 1 for that sample and w = 0 for the others (the limit D -> 0).
NEAREST_GUARD = 1e-12
#: The two readings of the paper's colour weight (see the module docstring).
COLOR_WEIGHTS = ("complement", "printed")
#: Pixels per chunk of the pair computation (chunk × k_F × k_B float64 temporaries).
CHUNK = 2048


@dataclass(frozen=True)
class RobustEstimates:
    """Per unknown pixel: the sampled alpha and its confidence (both in [0,1])."""

    alpha: np.ndarray  # [N] float64
    confidence: np.ndarray  # [N] float64


def _number(value, name: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise InputError(f"{name} must be {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def _int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def sparse_boundary_samples(image, labels, *, spacing: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background samples on the regions' boundaries, at most one per ``spacing × spacing`` cell.

    The boundary of a region is its pixels 4-adjacent to an unknown pixel (a
    region that touches no unknown pixel offers all its pixels, see
    :func:`~mattezoo.classical.sampling.boundary_samples`). The image is cut
    into cells of ``spacing × spacing`` pixels from the top-left corner, and a
    cell keeps its first boundary pixel in raster order. ``spacing = 1`` keeps
    every boundary pixel. Returns ascending raster indices.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    spacing = _int(spacing, "spacing")
    width = labels.shape[1]
    cells_per_row = -(-width // spacing)
    sets = []
    for samples in boundary_samples(image, labels):
        samples = np.sort(samples)
        y, x = np.divmod(samples, width)
        cell = (y // spacing) * cells_per_row + x // spacing
        _, first = np.unique(cell, return_index=True)  # first occurrence = smallest raster index in the cell
        sets.append(np.sort(samples[first]))
    return sets[0], sets[1]


def nearest_boundary_samples(shape, samples, pixels, *, k: int = 20) -> np.ndarray:
    """The ``min(k, len(samples))`` samples nearest in the image plane to each pixel: ``[N, k']`` raster indices.

    Nearest first (Euclidean pixel distance; ties in the KD-tree's order).
    """
    height, width = shape
    if np.size(samples) == 0:
        raise InputError("nearest_boundary_samples needs at least one sample")
    samples = _index_array(samples, height * width, "samples")
    pixels = _index_array(pixels, height * width, "pixels")
    k = _int(k, "k")
    if pixels.size == 0:
        return np.zeros((0, min(k, samples.size)), np.int64)
    points = np.stack(np.divmod(samples, width), axis=1).astype(np.float32)
    queries = np.stack(np.divmod(pixels, width), axis=1).astype(np.float32)
    nearest, _ = knn_search(points, min(k, samples.size), queries)
    return samples[nearest]


def _squared_norms(a: np.ndarray) -> np.ndarray:
    return np.einsum("...c,...c->...", a, a)


def pair_confidences(colors, fg_colors, bg_colors, *, sigma: float = 0.1, color_weight: str = "complement"):
    """Every (F_i, B_j) pair's alpha and confidence for each pixel (the formulas in the module docstring).

    :param colors: ``[N,3]`` pixel colours ``C``.
    :param fg_colors, bg_colors: ``[N,k_F,3]`` and ``[N,k_B,3]`` the pixel's sample colours.
    :param sigma: σ of the confidence (paper: 0.1).
    :param color_weight: ``"complement"`` (``w = 1 - exp(-d²/D²)``) or ``"printed"`` (``w = exp(-d²/D²)``).
    :return: ``(alpha, penalty, confidence)``, each ``[N,k_F,k_B]``: α̂ clamped to [0,1],
        ``R_d² w(F_i) w(B_j)`` (the ranking key) and ``f = exp(-penalty / σ²)``.

    α̂ is clamped before the distance ratio is measured, so a pair whose
    segment does not reach past ``C`` pays for the gap.
    """
    colors, fg_colors, bg_colors = (np.asarray(a, np.float64) for a in (colors, fg_colors, bg_colors))
    n = colors.shape[0]
    if colors.shape != (n, 3) or fg_colors.ndim != 3 or fg_colors.shape[::2] != (n, 3) or bg_colors.ndim != 3 \
            or bg_colors.shape[::2] != (n, 3) or fg_colors.shape[1] == 0 or bg_colors.shape[1] == 0:
        raise InputError(f"colors must be [N,3] and fg_colors, bg_colors [N,k,3] with k >= 1, got {colors.shape}, "
                         f"{fg_colors.shape} and {bg_colors.shape}")
    sigma = _number(sigma, "sigma")
    color_weight = _color_weight_name(color_weight)
    # Everything relative to C, from the Gram terms of the samples: [N,k_F,k_B]
    # scalars instead of 3-vectors, and C's own magnitude never enters.
    f = fg_colors - colors[:, None, :]
    b = bg_colors - colors[:, None, :]
    ff = _squared_norms(f)  # |F_i - C|², [N,k_F]
    bb = _squared_norms(b)  # |B_j - C|², [N,k_B]
    fb = np.matmul(f, b.transpose(0, 2, 1))  # (F_i - C)·(B_j - C)
    ff3, bb3 = ff[:, :, None], bb[:, None, :]
    span = np.maximum(ff3 + bb3 - 2.0 * fb, 0.0) + PAIR_GUARD  # |F - B|² + guard
    alpha = np.clip((bb3 - fb) / span, 0.0, 1.0)  # (C - B)·(F - B) / |F - B|²
    # |C - (αF + (1-α)B)|² = |α(F - C) + (1-α)(B - C)|²
    residual2 = np.maximum(alpha * alpha * ff3 + 2.0 * alpha * (1.0 - alpha) * fb + (1.0 - alpha) ** 2 * bb3, 0.0)
    w_f = _color_weights(ff, color_weight)
    w_b = _color_weights(bb, color_weight)
    penalty = residual2 / span * w_f[:, :, None] * w_b[:, None, :]
    return alpha, penalty, np.exp(-penalty / (sigma * sigma))


def _color_weight_name(value) -> str:
    if not isinstance(value, str) or value not in COLOR_WEIGHTS:
        raise InputError(f"color_weight must be one of {', '.join(map(repr, COLOR_WEIGHTS))}, got {value!r}")
    return value


def _color_weights(d2: np.ndarray, color_weight: str) -> np.ndarray:
    """``w(S_i)`` from ``exp(-d_i² / D²)``, ``d_i = |S_i - C|`` and ``D`` the smallest of them: ``[N,k]``."""
    nearest = np.maximum(d2.min(axis=1, keepdims=True), NEAREST_GUARD)
    gaussian = np.exp(-d2 / nearest)
    return 1.0 - gaussian if color_weight == "complement" else gaussian


def robust_estimates(image, pixels, fg_samples, bg_samples, *, sigma: float = 0.1, n_best: int = 3,
                     color_weight: str = "complement") -> RobustEstimates:
    """Each pixel's alpha and confidence: the means over its ``n_best`` most confident sample pairs.

    :param image: ``H×W×3`` RGB.
    :param pixels: ``[N]`` raster indices of the pixels to estimate.
    :param fg_samples, bg_samples: ``[N,k_F]``, ``[N,k_B]`` raster indices of each pixel's samples
        (see :func:`nearest_boundary_samples`).
    :param sigma: σ of the confidence (paper: 0.1).
    :param n_best: pairs averaged (paper: 3); at most ``k_F · k_B`` are.
    :param color_weight: see :func:`pair_confidences`.

    Pairs are ranked by ``R_d² w(F) w(B)`` (smallest first, the same order as
    the confidence, which rounds to 1 for many good pairs), ties to the lower
    pair index ``i · k_B + j``.
    """
    image = as_float_image(image)
    n_pixels = image.shape[0] * image.shape[1]
    pixels = _index_array(pixels, n_pixels, "pixels")
    n = pixels.size
    fg_samples = _index_array(fg_samples, n_pixels, "fg_samples")
    bg_samples = _index_array(bg_samples, n_pixels, "bg_samples")
    for name, samples in (("fg_samples", fg_samples), ("bg_samples", bg_samples)):
        if samples.ndim != 2 or samples.shape[0] != n or samples.shape[1] == 0:
            raise InputError(f"{name} must be [N,k] with N = {n} pixels and k >= 1, got {samples.shape}")
    sigma = _number(sigma, "sigma")
    color_weight = _color_weight_name(color_weight)
    n_best = min(_int(n_best, "n_best"), fg_samples.shape[1] * bg_samples.shape[1])
    flat = image.reshape(-1, 3)
    alpha_out = np.empty(n)
    confidence_out = np.empty(n)
    for start in range(0, n, CHUNK):
        part = slice(start, min(start + CHUNK, n))
        alpha, penalty, confidence = pair_confidences(flat[pixels[part]], flat[fg_samples[part]], flat[bg_samples[part]],
                                                      sigma=sigma, color_weight=color_weight)
        m = alpha.shape[0]
        penalty, alpha, confidence = penalty.reshape(m, -1), alpha.reshape(m, -1), confidence.reshape(m, -1)
        best = _smallest(penalty, n_best)
        alpha_out[part] = (alpha * best).sum(axis=1) / n_best
        confidence_out[part] = (confidence * best).sum(axis=1) / n_best
    return RobustEstimates(alpha=alpha_out, confidence=confidence_out)


def _smallest(values: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the ``n`` smallest entries of each row, ties to the lower column (a stable sort's first ``n``).

    A partition finds each row's ``n``-th smallest value ``t``; every entry
    below ``t`` is taken, and entries equal to ``t`` fill the rest in column
    order. Linear in the row length, where sorting the 400 pairs was not.
    """
    kth = np.partition(values, n - 1, axis=1)[:, n - 1:n]
    below = values < kth
    tied = values == kth
    room = n - below.sum(axis=1, keepdims=True)
    return below | (tied & (np.cumsum(tied, axis=1) <= room))


def virtual_node_weights(alpha, confidence, *, gamma: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The weights ``(W_F, W_B)`` linking each pixel to the foreground and the background terminal.

    ``W_F = γ[f α̂ + (1-f) δ(α̂ > 0.5)]`` and ``W_B = γ[f (1-α̂) + (1-f) δ(α̂ < 0.5)]``:
    a confident estimate pulls towards α̂, an unsure one towards the nearer of 0 and 1.
    """
    alpha, confidence = np.asarray(alpha, np.float64), np.asarray(confidence, np.float64)
    if alpha.shape != confidence.shape or alpha.ndim != 1:
        raise InputError(f"alpha and confidence must be [N] arrays of one shape, got {alpha.shape} and {confidence.shape}")
    for name, value in (("alpha", alpha), ("confidence", confidence)):
        if not np.isfinite(value).all() or (value < 0).any() or (value > 1).any():
            raise InputError(f"{name} must lie in [0,1]")
    gamma = _number(gamma, "gamma", positive=False)
    w_f = gamma * (confidence * alpha + (1.0 - confidence) * (alpha > 0.5))
    w_b = gamma * (confidence * (1.0 - alpha) + (1.0 - confidence) * (alpha < 0.5))
    return w_f, w_b


__all__ = [
    "BACKGROUND",
    "COLOR_WEIGHTS",
    "FOREGROUND",
    "UNKNOWN",
    "RobustEstimates",
    "nearest_boundary_samples",
    "pair_confidences",
    "robust_estimates",
    "sparse_boundary_samples",
    "virtual_node_weights",
]
