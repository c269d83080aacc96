"""Information-flow matting: Aksoy, Aydın, Pollefeys, "Designing Effective
Inter-Pixel Information Flow for Natural Image Matting", CVPR 2017.

The alpha of the unknown pixels minimises a sum of quadratic "flows":

- colour-mixture flow, ``Σ_{p∈U} (α_p − Σ_q w_pq α_q)²``: each unknown pixel
  is an LLE combination ``w_p`` (weights sum to one) of the RGB colours of its
  ``K_CM = 20`` nearest neighbours in (r, g, b, x/W, y/H), anywhere in the image;
- K-to-U flow, ``σ_KU Σ_{p∈U} H_p (α_p − ŵ^F_p)²``: the same LLE over ``K_KU = 7``
  foreground plus 7 background neighbours (coordinates weighted by 10) gives an
  estimate ``ŵ^F_p`` (the foreground neighbours' share) and a confidence ``H_p``
  (squared distance of the mixed foreground and background colours, over 3);
- intra-U flow, ``σ_IU α_Uᵀ L_IU α_U``: a KNN-matting Laplacian among the
  unknown pixels (``K_IU = 5`` neighbours with coordinates weighted by 0.05 plus
  one with 0.0005, kernel ``max(1 − ‖f_p − f_q‖₁/5, 0)``, symmetrised);
- local flow, ``σ_L αᵀ L_L α``: the closed-form matting Laplacian with
  ``ε = 1e-6`` over 3×3 windows, normalised.

Weights from the official toolbox (``yaksoy/AffinityBasedMattingToolbox``,
``getMattingParams('IFM')``): σ_CM = 1, σ_KU = 0.05, σ_IU = 0.01, σ_L = 1.
As there, the K-to-U flow is used only when the histogram test of the paper
says the matte is not highly transparent (``known_to_unknown="auto"``); its
estimates are computed on a trimap extended by patch-based trimming
(Bhattacharyya distances of local colour distributions, K = 5) and overridden
by edge-based trimming (Shahrian et al. 2013), where they become 0 or 1 with
confidence 1. ``post_trim=True`` also applies the edge trimming to the final
matte (the paper's setting; the toolbox's default is off, and so is ours).

Where this differs from the official code, and why:

- Known pixels are hard constraints (``λ → ∞``) rather than the soft trimap
  term with ``λ = 100``: the unknown pixels solve ``A_UU α_U = −A_UK α_K + b``
  by preconditioned CG, as closed_form and knn do here. The known pixels keep
  their trimap values exactly instead of drifting by ~1/λ.
- Local flow: the toolbox divides each row of the symmetrised matting
  affinity by its sum, twice the number of 3×3 windows covering the pixel,
  which makes an unknown pixel's row the closed-form Laplacian's divided by
  that number. We divide by the constant ``(2r+1)²`` instead: the same on
  every pixel at least ``r`` pixels from the image border, and the system
  stays symmetric, which CG needs (the row-normalised one is not).
- Kept as in the code rather than "fixed": the highly-transparent test builds
  its histograms from the red, blue and blue channels (its threshold 0.0099
  goes with that choice), and ``H_p`` uses the weighted colour sums of each
  side without dividing by that side's share of the weights.
- Solver: incomplete-Cholesky PCG to ``rtol = 1e-7`` instead of MATLAB's
  unpreconditioned ``pcg`` (tolerance 1e-6, at most 2000 iterations).
- Exact KD-tree neighbours (:func:`mattezoo.classical.knn_search`) instead of
  MATLAB's ``knnsearch``; ties may be broken differently.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.ndimage
import scipy.sparse

from mattezoo import MethodSpec, PaperResult, hookimpl
from mattezoo.classical import as_float_image, cf_laplacian_system, knn_search, solve_cg, split_trimap
from mattezoo.classical.method import TrimapPropagationMethod
from mattezoo.errors import InputError
from mattezoo.extension import has_ops

CITATION = ("Aksoy, Aydın, Pollefeys. Designing Effective Inter-Pixel Information Flow for Natural Image Matting. "
            "CVPR 2017.")
#: Ridge added to the LLE Gram matrices (official value). The colour
#: features have 3 dimensions and the neighbourhoods 14 or 20 points, so the
#: Gram matrix is singular without it; the ridge picks the smallest weights.
LLE_CONDITIONER = 1e-10
#: Integer options (neighbour counts, window radius) and non-negative real
#: ones (coordinate weights, flow weights σ, ε) of the flows, with the
#: toolbox's defaults.
COUNT_OPTIONS = {"cm_neighbors": 20, "ku_neighbors": 7, "iu_neighbors": 5, "local_radius": 1}
REAL_OPTIONS = {"cm_xy_weight": 1.0, "cm_weight": 1.0, "ku_xy_weight": 10.0, "ku_weight": 0.05, "iu_xy_weight": 0.05,
                "iu_weight": 0.01, "local_epsilon": 1e-6, "local_weight": 1.0}


# --------------------------------------------------------------------------- neighbours and LLE weights

def pixel_features(image: np.ndarray, xy_weight: float) -> np.ndarray:
    """``HW×5``: RGB and the 1-based pixel coordinates divided by the width/height, times ``xy_weight``."""
    height, width = image.shape[:2]
    features = np.empty((height, width, 5), np.float64)
    features[..., :3] = image
    features[..., 3] = xy_weight * (np.arange(1, width + 1) / width)[None, :]
    features[..., 4] = xy_weight * (np.arange(1, height + 1) / height)[:, None]
    return features.reshape(-1, 5)


def nonlocal_neighbors(features: np.ndarray, k: int, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """The ``k`` nearest pixels of ``pool`` (flat indices) to each pixel of ``queries``, itself excluded.

    :return: ``len(queries)×k`` flat pixel indices, nearest first.
    """
    overlap = bool(np.intersect1d(queries, pool, assume_unique=True).size)
    found, _ = knn_search(features[pool], k + 1 if overlap else k, features[queries])
    found = pool[found]
    if not overlap:
        return found
    # Drop the pixel itself; where it is not among the matches (an exact tie
    # pushed it out), drop the farthest match instead.
    is_self = found == queries[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    is_self &= np.cumsum(is_self, axis=1) == 1  # only one per row even if listed twice
    return found[~is_self].reshape(len(queries), k)


def lle_weights(points: np.ndarray, neighbours: np.ndarray, conditioner: float = LLE_CONDITIONER) -> np.ndarray:
    """Weights ``w`` (rows sum to one) minimising ``‖p − Σ_j w_j n_j‖² + c‖w‖²`` for each point.

    :param points: ``M×D``; :param neighbours: ``M×K×D``.
    :return: ``M×K``. The Lagrange solution of the sum constraint: with
        ``C = N Nᵀ + c I``, ``w = C⁻¹(N p + μ 1)``, ``μ = (1 − 1ᵀC⁻¹N p) / 1ᵀC⁻¹1``.
    """
    k = neighbours.shape[1]
    gram = np.einsum("mkd,mld->mkl", neighbours, neighbours)
    gram[:, np.arange(k), np.arange(k)] += conditioner
    rhs = np.stack([np.einsum("mkd,md->mk", neighbours, points), np.ones(points.shape[0:1] + (k,))], axis=2)
    solved = np.linalg.solve(gram, rhs)  # columns: C⁻¹ N p and C⁻¹ 1
    multiplier = (1.0 - solved[:, :, 0].sum(axis=1)) / solved[:, :, 1].sum(axis=1)
    weights = solved[:, :, 0] + multiplier[:, None] * solved[:, :, 1]
    return weights / weights.sum(axis=1, keepdims=True)


def checked_flow_options(options: dict) -> dict:
    """``options`` validated: counts are ints >= 1, the rest finite reals >= 0; unknown names are refused."""
    unknown = sorted(set(options) - set(COUNT_OPTIONS) - set(REAL_OPTIONS))
    if unknown:
        valid = ", ".join([*COUNT_OPTIONS, *REAL_OPTIONS])
        raise InputError(f"unknown option(s) {', '.join(unknown)} for information_flow. Valid options: {valid}.")
    checked = {}
    for name, value in options.items():
        if name in COUNT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{name} must be an int >= 1, got {value!r}")
            checked[name] = int(value)
        else:
            real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if not real or not np.isfinite(value) or value < 0:
                raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
            checked[name] = float(value)
    return checked


def checked_known_to_unknown(value):
    """``"auto"``, ``True`` or ``False`` (NumPy bools accepted), else :class:`InputError`."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value == "auto":
        return value
    raise InputError(f"known_to_unknown must be 'auto', True or False, got {value!r}")


# --------------------------------------------------------------------------- the flows

def color_mixture_rows(image: np.ndarray, unknown: np.ndarray, k: int = 20, xy_weight: float = 1.0) -> scipy.sparse.csr_matrix:
    """``R = E_U − W_CM``, ``|U|×HW``: row ``p`` is ``e_p − w_p`` so that the flow is ``‖R α‖²``.

    Neighbours come from the whole image (colour and weighted position),
    the LLE weights from the colours alone.
    """
    n_pixels = unknown.size
    queries = np.flatnonzero(unknown)
    k = min(k, n_pixels - 1)
    features = pixel_features(image, xy_weight)
    neighbours = nonlocal_neighbors(features, k, queries, np.arange(n_pixels))
    colours = features[:, :3]
    weights = lle_weights(colours[queries], colours[neighbours])
    rows = np.repeat(np.arange(len(queries)), k + 1)
    cols = np.concatenate([queries[:, None], neighbours], axis=1).ravel()
    values = np.concatenate([np.ones((len(queries), 1)), -weights], axis=1).ravel()
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(queries), n_pixels))


def intra_unknown_laplacian(image: np.ndarray, unknown: np.ndarray, k: int = 5, xy_weight: float = 0.05) -> scipy.sparse.csr_matrix:
    """``|U|×|U|`` Laplacian ``D − W`` of the intra-U flow (KNN-matting affinity among unknown pixels).

    As in the toolbox (after Chen et al.'s KNN matting code): ``k`` neighbours
    with coordinates weighted by ``xy_weight`` plus ``ceil(k/5)`` with
    ``xy_weight/100``; affinity ``max(1 − ‖f_p − f_q‖₁ / 5, 0)`` on features
    whose coordinates carry ``xy_weight/10⁴``; repeated pairs add up; ``W`` is
    symmetrised as ``(W + Wᵀ)/2``.
    """
    queries = np.flatnonzero(unknown)
    n = len(queries)
    if n < 2:
        return scipy.sparse.csr_matrix((n, n))
    position = np.full(unknown.size, -1)
    position[queries] = np.arange(n)
    near = nonlocal_neighbors(pixel_features(image, xy_weight), min(k, n - 1), queries, queries)
    far_features = pixel_features(image, xy_weight / 100)
    far = nonlocal_neighbors(far_features, min(-(-k // 5), n - 1), queries, queries)
    neighbours = np.concatenate([near, far], axis=1)
    features = far_features.copy()
    features[:, 3:] /= 100
    distance = np.abs(features[queries][:, None, :] - features[neighbours]).sum(axis=2)
    affinity = np.maximum(1.0 - distance / features.shape[1], 0.0)
    rows = np.repeat(np.arange(n), neighbours.shape[1])
    w = scipy.sparse.csr_matrix((affinity.ravel(), (rows, position[neighbours].ravel())), shape=(n, n))
    w = (w + w.T) / 2
    return (scipy.sparse.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()


def known_to_unknown_flow(image: np.ndarray, foreground: np.ndarray, background: np.ndarray, k: int = 7,
                          xy_weight: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel alpha estimate ``ŵ^F`` and confidence ``H`` of the K-to-U flow (``H×W`` each).

    Each pixel outside ``foreground``/``background`` is an LLE mixture of its
    ``k`` nearest foreground and ``k`` nearest background pixels (colour and
    weighted position); ``ŵ^F`` is the foreground neighbours' share and
    ``H = ‖Σ_F w c − Σ_B w c‖² / 3``. Known pixels get their own alpha and ``H = 1``.
    """
    unknown = ~(foreground | background)
    estimate = foreground.astype(np.float64)
    confidence = (~unknown).astype(np.float64)
    queries = np.flatnonzero(unknown)
    if not queries.size:
        return estimate, confidence
    features = pixel_features(image, xy_weight)
    fg_pool, bg_pool = np.flatnonzero(foreground), np.flatnonzero(background)
    k_fg, k_bg = min(k, len(fg_pool)), min(k, len(bg_pool))
    neighbours = np.concatenate([nonlocal_neighbors(features, k_fg, queries, fg_pool),
                                 nonlocal_neighbors(features, k_bg, queries, bg_pool)], axis=1)
    colours = features[:, :3]
    weights = lle_weights(colours[queries], colours[neighbours])
    mixed = weights[:, :, None] * colours[neighbours]
    fg_colour, bg_colour = mixed[:, :k_fg].sum(axis=1), mixed[:, k_fg:].sum(axis=1)
    estimate.ravel()[queries] = weights[:, :k_fg].sum(axis=1)
    confidence.ravel()[queries] = ((fg_colour - bg_colour) ** 2).sum(axis=1) / 3
    return estimate, confidence


# --------------------------------------------------------------------------- trimap trimming and flow selection

def _square_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by a ``(2r+1)²`` square (OpenCV: separable, much faster than SciPy's binary dilation)."""
    return cv2.dilate(np.ascontiguousarray(mask).view(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)).view(bool)


def edge_trimming(image: np.ndarray, foreground: np.ndarray, background: np.ndarray, *, iterations: int = 9,
                  upper_threshold: float = 9 / 256, lower_threshold: float = 1 / 256) -> tuple[np.ndarray, np.ndarray]:
    """Grow the known regions into the unknown one by colour similarity (Shahrian et al. 2013, toolbox variant).

    In iteration ``i = 1..iterations`` each unknown pixel within ``i`` pixels
    (Chebyshev) of a known region takes the label of the nearest (Euclidean)
    known pixel in its ``(2i+1)²`` window whose RGB distance is below a
    threshold falling linearly from ``upper_threshold`` towards
    ``lower_threshold``. Ties go to the first in the window's column-major
    order, as in the toolbox. Returns the new ``(foreground, background)``.
    """
    height, width = foreground.shape
    # Pad by the largest window radius so that a flat index plus an offset
    # never leaves the array; the padding is neither known nor similar.
    pad = iterations
    padded_width = width + 2 * pad
    colours = np.pad(image, ((pad, pad), (pad, pad), (0, 0))).reshape(-1, 3)
    fg = np.pad(foreground, pad).ravel()
    bg = np.pad(background, pad).ravel()
    step = (upper_threshold - lower_threshold) / iterations
    for i in range(1, iterations + 1):
        threshold = upper_threshold - i * step
        fg_2d, bg_2d = fg.reshape(-1, padded_width), bg.reshape(-1, padded_width)
        near = (_square_dilate(fg_2d, i) | _square_dilate(bg_2d, i)).ravel()
        near.reshape(-1, padded_width)[[*range(pad), *range(-pad, 0)], :] = False
        near.reshape(-1, padded_width)[:, [*range(pad), *range(-pad, 0)]] = False
        known = fg | bg
        pixels = np.flatnonzero(near & ~known)
        if not pixels.size:
            continue
        offsets = [(dr, dc) for dc in range(-i, i + 1) for dr in range(-i, i + 1)]
        offsets.sort(key=lambda o: o[0] ** 2 + o[1] ** 2)  # stable: column-major order among equal distances
        label = np.full(pixels.size, -1, np.int8)  # -1: none yet, 0: background, 1: foreground
        open_ = np.arange(pixels.size)
        for dr, dc in offsets:
            source = pixels[open_] + (dr * padded_width + dc)
            candidate = known[source]  # cheap test first: most windows are all unknown at this offset
            which, source = open_[candidate], source[candidate]
            hit = ((colours[source] - colours[pixels[which]]) ** 2).sum(axis=1) < threshold ** 2
            if hit.any():
                label[which[hit]] = fg[source[hit]]
                open_ = open_[label[open_] < 0]
                if not open_.size:
                    break
        fg[pixels[label == 1]] = True  # written after the sweep: each iteration reads the trimap it started with
        bg[pixels[label == 0]] = True
    crop = (slice(pad, pad + height), slice(pad, pad + width))
    return fg.reshape(-1, padded_width)[crop], bg.reshape(-1, padded_width)[crop]


def local_gaussians(image: np.ndarray, radius: int = 1, epsilon: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``HW×3`` and covariance ``HW×3×3`` of the colours in each ``(2r+1)²`` window (replicated border)."""
    size = 2 * radius + 1
    box = lambda x: scipy.ndimage.uniform_filter(x, size=size, mode="nearest")  # noqa: E731
    mean = np.stack([box(image[..., c]) for c in range(3)], axis=-1)
    covariance = np.empty(image.shape[:2] + (3, 3))
    for a in range(3):
        for b in range(a, 3):
            covariance[..., a, b] = covariance[..., b, a] = box(image[..., a] * image[..., b]) - mean[..., a] * mean[..., b]
    covariance[..., np.arange(3), np.arange(3)] += epsilon
    return mean.reshape(-1, 3), covariance.reshape(-1, 3, 3)


def patch_trimming(image: np.ndarray, foreground: np.ndarray, background: np.ndarray, *, k: int = 5,
                   min_distance: float = 0.25, max_distance: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Label unknown pixels whose 3×3 colour distribution matches one known region and not the other.

    For each unknown pixel, the ``k`` known pixels of each region nearest in
    window-mean colour are compared by the Bhattacharyya distance of the
    windows' normal distributions; a foreground match below ``min_distance``
    with no background match below ``max_distance`` makes it foreground, and
    the other way round. Returns the new ``(foreground, background)``.
    """
    mean, covariance = local_gaussians(image)
    queries = np.flatnonzero(~(foreground | background))
    fg, bg = foreground.ravel().copy(), background.ravel().copy()
    if not queries.size:
        return foreground, background
    log_det = np.linalg.slogdet(covariance)[1]

    def closest(pool: np.ndarray) -> np.ndarray:
        neighbours = nonlocal_neighbors(mean, min(k, len(pool)), queries, pool)
        shift = mean[neighbours] - mean[queries][:, None]
        pooled = (covariance[neighbours] + covariance[queries][:, None]) / 2
        mahalanobis = np.einsum("mkd,mkd->mk", shift, np.linalg.solve(pooled, shift[..., None])[..., 0])
        distance = mahalanobis / 8 + 0.5 * (np.linalg.slogdet(pooled)[1] - 0.5 * (log_det[queries][:, None] + log_det[neighbours]))
        return distance.min(axis=1)

    fg_distance, bg_distance = closest(np.flatnonzero(fg)), closest(np.flatnonzero(bg))
    to_fg = (fg_distance < min_distance) & (bg_distance > max_distance)
    to_bg = (fg_distance >= min_distance) & (bg_distance < min_distance) & (fg_distance > max_distance)
    fg[queries[to_fg]] = True
    bg[queries[to_bg]] = True
    return fg.reshape(foreground.shape), bg.reshape(background.shape)


def is_highly_transparent(image: np.ndarray, foreground: np.ndarray, background: np.ndarray, threshold: float = 0.0099) -> bool:
    """The paper's choice between its two energies: is the unknown region's colour histogram
    badly explained as a mix of the histograms of the known pixels within 20 pixels of it?

    10-bin histograms of the red, blue and blue channels (the toolbox's), least-squares fit of
    the unknown histogram by the foreground and background ones; the RMS-like error
    ``‖residual‖ / 30`` above ``threshold`` means highly transparent (no K-to-U flow).
    """
    unknown = ~(foreground | background)
    band = cv2.dilate(unknown.view(np.uint8), np.ones((20, 20), np.uint8)).view(bool)
    edges = np.concatenate([[0.0], (np.arange(9) + 0.5) / 9, [1.0]])  # MATLAB imhist bins centred on 0, 1/9, ..., 1

    def histogram(mask: np.ndarray) -> np.ndarray:
        count = max(int(mask.sum()), 1)
        return np.concatenate([np.histogram(image[..., c][mask], edges)[0] for c in (0, 2, 2)]) / count

    basis = np.stack([histogram(foreground & band), histogram(background & band)], axis=1)
    target = histogram(unknown)
    weights = np.linalg.lstsq(basis, target, rcond=None)[0]
    error = np.linalg.norm(basis @ weights - target) / target.size
    return bool(error > threshold)


# --------------------------------------------------------------------------- the estimator

def information_flow_system(image: np.ndarray, regions, *, cm_neighbors: int = 20, cm_xy_weight: float = 1.0,
                            cm_weight: float = 1.0, ku_neighbors: int = 7, ku_xy_weight: float = 10.0,
                            ku_weight: float = 0.05, iu_neighbors: int = 5, iu_xy_weight: float = 0.05,
                            iu_weight: float = 0.01, local_radius: int = 1, local_epsilon: float = 1e-6,
                            local_weight: float = 1.0, use_known_to_unknown: bool = True,
                            edge_trimmed=None) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The SPD system ``A α_U = b`` over the unknown pixels (raster order) with the known pixels fixed.

    ``A = σ_CM R_Uᵀ R_U + σ_L/(2r+1)² L_UU + σ_IU L_IU + σ_KU diag(H_U)`` and
    ``b = −σ_CM R_Uᵀ R_K α_K − σ_L/(2r+1)² L_UK α_K + σ_KU H_U ŵ^F_U``.
    ``edge_trimmed``: the ``(foreground, background)`` of :func:`edge_trimming`
    (computed here when the K-to-U flow needs it and none is given).
    """
    unknown, known_alpha = regions.unknown, regions.known_alpha()
    flat_unknown = unknown.ravel()
    rows = color_mixture_rows(image, unknown, cm_neighbors, cm_xy_weight)
    rows_u, rows_k = rows[:, flat_unknown], rows[:, ~flat_unknown]
    matrix = cm_weight * (rows_u.T @ rows_u)
    rhs = -cm_weight * (rows_u.T @ (rows_k @ known_alpha.ravel()[~flat_unknown]))

    local = cf_laplacian_system(image, unknown, known_alpha, epsilon=local_epsilon, radius=local_radius)
    scale = local_weight / (2 * local_radius + 1) ** 2
    matrix = matrix + scale * local.matrix
    rhs = rhs + scale * local.rhs
    matrix = matrix + iu_weight * intra_unknown_laplacian(image, unknown, iu_neighbors, iu_xy_weight)

    if use_known_to_unknown:
        fg, bg = patch_trimming(image, regions.foreground, regions.background)
        estimate, confidence = known_to_unknown_flow(image, fg, bg, ku_neighbors, ku_xy_weight)
        edge_fg, edge_bg = edge_trimmed if edge_trimmed is not None else edge_trimming(image, regions.foreground, regions.background)
        estimate[edge_fg], estimate[edge_bg] = 1.0, 0.0
        confidence[edge_fg | edge_bg] = 1.0
        matrix = matrix + scipy.sparse.diags(ku_weight * confidence[unknown])
        rhs = rhs + ku_weight * confidence[unknown] * estimate[unknown]
    return scipy.sparse.csr_matrix(matrix), rhs


def estimate_alpha_information_flow(image, trimap, *, cm_neighbors: int = 20, cm_xy_weight: float = 1.0,
                                    cm_weight: float = 1.0, ku_neighbors: int = 7, ku_xy_weight: float = 10.0,
                                    ku_weight: float = 0.05, iu_neighbors: int = 5, iu_xy_weight: float = 0.05,
                                    iu_weight: float = 0.01, local_radius: int = 1, local_epsilon: float = 1e-6,
                                    local_weight: float = 1.0, known_to_unknown="auto", post_trim: bool = False,
                                    preconditioner="ichol", rtol: float = 1e-7, maxiter: int = 10000) -> np.ndarray:
    """Alpha matte of ``image`` by information-flow matting.

    :param image: ``H×W×3`` RGB, float in [0,1] or uint8.
    :param trimap: ``H×W``, uint8 0/128/255 or float 0 / (0,1) / 1.
    :param cm_neighbors, cm_xy_weight, cm_weight: colour-mixture flow: K, coordinate weight, σ_CM (20, 1, 1).
    :param ku_neighbors, ku_xy_weight, ku_weight: K-to-U flow: K per known region, coordinate weight, σ_KU (7, 10, 0.05).
    :param iu_neighbors, iu_xy_weight, iu_weight: intra-U flow: K, coordinate weight, σ_IU (5, 0.05, 0.01).
    :param local_radius, local_epsilon, local_weight: local flow: window radius, ε, σ_L (1, 1e-6, 1).
    :param known_to_unknown: ``"auto"`` (the paper's histogram test), ``True`` or ``False``.
    :param post_trim: set the pixels that edge-based trimming labels to 0/1 in the result.
    :param preconditioner, rtol, maxiter: see :func:`mattezoo.classical.solve_cg`.
    :return: ``H×W`` float64 alpha in [0,1]; a trimap without unknown pixels is returned at once.
    """
    known_to_unknown = checked_known_to_unknown(known_to_unknown)
    flow_options = checked_flow_options(dict(
        cm_neighbors=cm_neighbors, cm_xy_weight=cm_xy_weight, cm_weight=cm_weight, ku_neighbors=ku_neighbors,
        ku_xy_weight=ku_xy_weight, ku_weight=ku_weight, iu_neighbors=iu_neighbors, iu_xy_weight=iu_xy_weight,
        iu_weight=iu_weight, local_radius=local_radius, local_epsilon=local_epsilon, local_weight=local_weight))
    image = as_float_image(image)
    regions = split_trimap(trimap, image.shape[:2])
    known_alpha = regions.known_alpha()
    if not regions.unknown.any():
        return known_alpha
    if known_to_unknown == "auto":
        known_to_unknown = not is_highly_transparent(image, regions.foreground, regions.background)
    trimmed = edge_trimming(image, regions.foreground, regions.background) if (known_to_unknown or post_trim) else None
    matrix, rhs = information_flow_system(image, regions, use_known_to_unknown=known_to_unknown, edge_trimmed=trimmed,
                                           **flow_options)
    # The colour-mixture term makes A ~80 entries a row: a sparse compiled IC
    # factor (drop 1e-2) takes ~20 CG iterations but factors several times
    # faster than at 1e-4. SciPy's ILU (no extension) is too weak at 1e-2.
    options = {"drop_tolerance": 1e-2} if preconditioner == "ichol" and has_ops() else None
    alpha = known_alpha.copy()
    alpha[regions.unknown] = solve_cg(matrix, rhs, preconditioner=preconditioner, rtol=rtol, maxiter=maxiter,
                                      preconditioner_options=options)
    if post_trim:
        alpha[trimmed[0]], alpha[trimmed[1]] = 1.0, 0.0
    return np.clip(alpha, 0.0, 1.0)


class InformationFlowMatting(TrimapPropagationMethod):
    """The ``information_flow`` method object: ``obj(image [B,3,H,W], trimap [B,1,H,W]) -> alpha [B,1,H,W]``."""

    def __init__(self, known_to_unknown="auto", post_trim: bool = False, preconditioner: str = "ichol", rtol: float = 1e-7, *,
                 cm_neighbors: int = 20, cm_xy_weight: float = 1.0, cm_weight: float = 1.0, ku_neighbors: int = 7,
                 ku_xy_weight: float = 10.0, ku_weight: float = 0.05, iu_neighbors: int = 5, iu_xy_weight: float = 0.05,
                 iu_weight: float = 0.01, local_radius: int = 1, local_epsilon: float = 1e-6, local_weight: float = 1.0):
        self.known_to_unknown = checked_known_to_unknown(known_to_unknown)
        self.post_trim, self.preconditioner, self.rtol = bool(post_trim), preconditioner, rtol
        self.flow_options = checked_flow_options(dict(
            cm_neighbors=cm_neighbors, cm_xy_weight=cm_xy_weight, cm_weight=cm_weight, ku_neighbors=ku_neighbors,
            ku_xy_weight=ku_xy_weight, ku_weight=ku_weight, iu_neighbors=iu_neighbors, iu_xy_weight=iu_xy_weight,
            iu_weight=iu_weight, local_radius=local_radius, local_epsilon=local_epsilon, local_weight=local_weight))

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        return estimate_alpha_information_flow(image, trimap, known_to_unknown=self.known_to_unknown, post_trim=self.post_trim,
                                               preconditioner=self.preconditioner, rtol=self.rtol, **self.flow_options)


@hookimpl
def mattezoo_register_methods():
    # P3M paper Table 1 ("IFM"), rows B (blurred) and N (normal) of P3M-500-P;
    # no training protocol applies to a classical method.
    return [
        MethodSpec(
            name="information_flow",
            family="classical",
            factory="mattezoo_methods.information_flow:InformationFlowMatting",
            summary="Information-flow matting: colour-mixture, K-to-U, intra-U and local flows, preconditioned CG",
            citation=CITATION,
            paper_results=(
                PaperResult("P3M Table 1", "P3M-500-P (blurred)", {"SAD": 10.887, "MSE": 0.0326, "MAD": 0.0760}),
                PaperResult("P3M Table 1", "P3M-500-P (normal)", {"SAD": 10.793, "MSE": 0.0318, "MAD": 0.0748}),
            ),
        )
    ]
