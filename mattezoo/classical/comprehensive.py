"""Building blocks of comprehensive sampling (Shahrian, Rajan, Price, Cohen,
"Improving Image Matting using Comprehensive Sampling Sets", CVPR 2013).

The plugin ``mattezoo_methods.comprehensive_sampling`` chains them:

1. :func:`expand_known_iteratively`: the paper's pre-processing, nine rounds
   of known-region expansion with a growing reach and a shrinking colour
   threshold.
2. :func:`sampling_levels`: the sampling levels. The foreground is cut into
   nested bands along its boundary, ``band_thicknesses()`` = 5, 15, 35, 85,
   205, 495 pixels wide; an unknown pixel within Chebyshev distance
   ``(T_l - 1) / 2`` of the foreground (2, 7, 17, ... pixels) but not of a
   thinner level draws its foreground candidates from band ``l``, so the
   farther a pixel lies from the boundary, the wider the region it samples.
   Likewise for the background, independently.
3. :func:`cluster_band`: the candidates of a band are the clusters of a
   two-level clustering, by colour and then by position, each a Gaussian
   mixture (shared diagonal covariance, fitted by EM) whose number of
   components is the number of peaks of the smoothed histograms. A candidate
   is a cluster's mean colour, colour spread and mean position.
4. :func:`select_candidate_pairs` (compiled): per pixel the (F, B) pair of
   candidates maximising the objective ``K^e_k · S^e_s · C^e_c`` (chromatic
   distortion, spatial term, colour statistics; see the op schema in
   csrc/ops/comprehensive_sampling.cpp).

The band thicknesses, the expansion schedule, the histogram smoothing, the
cluster-size cut-offs and the exponents follow the authors' released MATLAB
code (read for these facts only); see the plugin docstring for what is ours.
Each wrapper checks its inputs and raises :class:`~mattezoo.errors.InputError`;
the pair selection runs the compiled op, or its NumPy restatement
(:func:`_select_reference`) without the extension (``MATTEZOO_DISABLE_EXT=1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import torch

from ..errors import InputError
from ..ops._native import op_loaded
from .sampling import BACKGROUND, FOREGROUND, UNKNOWN, _count, _labels, _positive, expand_known_regions
from .trimap import as_float_image

#: Widths of the first two sampling bands (pixels); each later one is ``2 T_{l-1} + T_{l-2}``.
FIRST_BANDS = (5, 15)
#: Histogram smoothing half-widths for the colour and the spatial clustering.
HISTOGRAM_SMOOTHING = (3, 3)
#: Clusters need more members than ``max(CUT_FRACTION · band size, minimum)``: 6 by colour, 3 by position.
CUT_FRACTION = 1e-4
CUT_MINIMUM = (6, 3)
#: Colour spreads below one 8-bit level are quantisation, not statistics (see the Cohen's d in the op).
STD_FLOOR = 1.0 / 255.0
#: Bands larger than this are clustered on a random sample of this many pixels (then every pixel is labelled).
MAX_FIT = 2048
#: EM stops when the log-likelihood gains less than this, relative (or after 100 rounds).
EM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CandidateSet:
    """The candidate clusters of one side (foreground or background), stacked over the levels.

    Level ``l`` owns rows ``offsets[l] .. offsets[l+1]-1``.
    """

    offsets: np.ndarray  # [L+1] int64
    mean: np.ndarray  # [K,3] float64 mean colour in [0,1]
    std: np.ndarray  # [K,3] float64 per-channel standard deviation
    position: np.ndarray  # [K,2] float64 mean (y, x)
    count: np.ndarray  # [K] int64 pixels in the cluster

    @property
    def levels(self) -> int:
        return int(self.offsets.size - 1)

    def level(self, index: int) -> slice:
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))


@dataclass(frozen=True)
class PairChoice:
    """What :func:`select_candidate_pairs` chose per unknown pixel."""

    fg_choice: np.ndarray  # [N] int64 row in the foreground CandidateSet, -1 if no pair
    bg_choice: np.ndarray  # [N] int64
    alpha: np.ndarray  # [N] float64 in [0,1] (0.5 without a pair)
    objective: np.ndarray  # [N] float64 in [0,1] (0 without a pair)


def band_thicknesses(levels: int = 6, first: tuple[int, int] = FIRST_BANDS) -> tuple[int, ...]:
    """Widths of the nested sampling bands: ``first[0], first[1]``, then ``T_l = 2 T_{l-1} + T_{l-2}``."""
    levels = _count(levels, "levels", 1)
    if (not isinstance(first, (tuple, list)) or len(first) != 2
            or not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) and t >= 1 for t in first)
            or first[1] < first[0]):
        raise InputError(f"first_bands must be two ints 1 <= T_1 <= T_2 (pixels), got {first!r}")
    widths = [int(first[0]), int(first[1])]
    while len(widths) < levels:
        widths.append(2 * widths[-1] + widths[-2])
    return tuple(widths[:levels])


def expand_known_iteratively(image, labels, *, iterations: int = 9, upper: float = 9 / 256,
                             lower: float = 1 / 256) -> np.ndarray:
    """The paper's pre-processing: ``iterations`` rounds of known-region expansion.

    Round ``i = 1..iterations`` labels an unknown pixel with the nearest known
    pixel within ``i`` pixels whose colour lies within
    ``upper - i (upper - lower) / iterations`` (RGB in [0,1]), reading the
    labels of the previous round (:func:`~mattezoo.classical.sampling.expand_known_regions`).
    Near pixels may differ more in colour than far ones.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    iterations = _count(iterations, "iterations")
    upper, lower = _positive(upper, "upper", allow_zero=True), _positive(lower, "lower", allow_zero=True)
    if lower > upper:
        raise InputError(f"lower ({lower}) must not exceed upper ({upper})")
    for i in range(1, iterations + 1):
        labels = expand_known_regions(image, labels, k_i=i, k_c=upper - i * (upper - lower) / iterations)
    return labels


def sampling_levels(labels, label: int, thicknesses) -> tuple[np.ndarray, list[np.ndarray]]:
    """Which band of region ``label`` each unknown pixel samples, and the bands.

    :return: ``levels`` ([N] int64, one per unknown pixel in raster order): the
        first ``l`` with Chebyshev distance to the region ``<= (T_l - 1) // 2``,
        the last level for pixels farther away; ``bands``: one ``H×W`` bool
        mask per level, the region's pixels within Chebyshev distance ``T_l`` of
        a pixel outside the region.
    """
    if label not in (FOREGROUND, BACKGROUND):
        raise InputError(f"label must be {FOREGROUND} (foreground) or {BACKGROUND} (background), got {label!r}")
    labels = np.asarray(labels)
    labels = _labels(labels, labels.shape[:2]) if labels.ndim == 2 else _labels(labels, (0, 0))
    thicknesses = np.asarray(thicknesses, dtype=np.int64)
    if thicknesses.ndim != 1 or thicknesses.size == 0 or (thicknesses < 1).any() or (np.diff(thicknesses) < 0).any():
        raise InputError(f"thicknesses must be a non-decreasing list of ints >= 1, got {thicknesses.tolist()}")
    region = labels == label
    if not region.any() or region.all():
        raise InputError(f"labels need pixels inside and outside region {label} to define its boundary")
    # Chessboard distances: the authors grow and shrink regions with square structuring elements.
    to_region = scipy.ndimage.distance_transform_cdt(~region, metric="chessboard")
    inside = scipy.ndimage.distance_transform_cdt(region, metric="chessboard")
    reach = (thicknesses - 1) // 2
    dist = to_region.ravel()[labels.ravel() == UNKNOWN]
    levels = np.minimum(np.searchsorted(reach, dist, side="left"), thicknesses.size - 1).astype(np.int64)
    bands = [region & (inside <= t) for t in thicknesses.tolist()]
    return levels, bands


def histogram_peaks(values: np.ndarray, smooth: int) -> int:
    """Peaks of the 256-bin histogram of ``values`` (integers 0..255) after a centred moving average.

    A bin is a peak when it is non-zero and the largest within ``±smooth``
    bins; a run of equal maxima counts once.
    """
    values = np.asarray(values)
    if values.size == 0:
        return 0
    hist = np.bincount(values.astype(np.int64).ravel(), minlength=256).astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(hist)])
    index = np.arange(256)
    lo, hi = np.maximum(index - smooth, 0), np.minimum(index + smooth, 255) + 1
    smoothed = (cum[hi] - cum[lo]) / (hi - lo)
    window_max = scipy.ndimage.maximum_filter1d(smoothed, size=2 * smooth + 1, mode="nearest")
    peak = (smoothed > 0) & (smoothed == window_max)
    peak[1:] &= smoothed[1:] != smoothed[:-1]
    return int(peak.sum())


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def fit_gmm_labels(x: np.ndarray, k: int, rng: np.random.Generator, *, max_iter: int = 100, tol: float = EM_TOLERANCE,
                   max_fit: int = MAX_FIT) -> np.ndarray:
    """Hard labels (``[N]`` int64) of ``x`` ``[N,D]`` under a ``k``-component Gaussian mixture.

    The components share one diagonal covariance; EM (compiled) starts from
    k-means++ seeds drawn with ``rng``, uniform weights and the data's
    variance, and stops when the log-likelihood gains less than ``tol``
    relative, or after ``max_iter`` rounds. More than ``max_fit`` points are
    fitted on a random sample of ``max_fit`` of them (drawn with ``rng``).
    Each point goes to the component of largest posterior; labels number the
    components that kept some mass.
    """
    x = np.ascontiguousarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or not np.isfinite(x).all():
        raise InputError(f"x must be a finite [N,D] array with N >= 1, got shape {x.shape}")
    n = x.shape[0]
    k = max(1, min(_count(k, "k", 1), n))
    if k == 1:
        return np.zeros(n, np.int64)
    max_fit = _count(max_fit, "max_fit", 1)
    order = rng.permutation(n) if n > max_fit else np.arange(n)
    n_fit = min(n, max_fit)
    x = np.ascontiguousarray(x[order])  # the fitted sample first
    k = min(k, n_fit)
    # k-means++ seeding: each next seed is drawn with probability ∝ squared distance to the chosen ones.
    sample = x[:n_fit]
    centres = [sample[rng.integers(n_fit)]]
    nearest = ((sample - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        if total <= 0:
            break  # fewer distinct points than components
        centres.append(sample[rng.choice(n_fit, p=nearest / total)])
        nearest = np.minimum(nearest, ((sample - centres[-1]) ** 2).sum(axis=1))
    means = np.array(centres)
    max_iter, tol = _count(max_iter, "max_iter"), _positive(tol, "tol", allow_zero=True)
    if op_loaded("comprehensive_gmm_labels"):
        labels = torch.ops.mattezoo.comprehensive_gmm_labels(torch.from_numpy(x), torch.from_numpy(means), n_fit,
                                                            max_iter, tol).numpy()
    else:
        labels = _gmm_reference(x, means, n_fit, max_iter, tol)
    out = np.empty(n, np.int64)
    out[order] = labels
    return out


def _gmm_reference(everything: np.ndarray, mu: np.ndarray, n_fit: int, max_iter: int, tol: float) -> np.ndarray:
    """NumPy restatement of the compiled EM (comprehensive_gmm_labels): fit the first ``n_fit`` rows, label all."""
    x = everything[:n_fit]
    n = n_fit
    var = x.var(axis=0)
    floor = 1e-6 * (1.0 + var.max())
    var = np.maximum(var, floor)
    log_pi = np.full(mu.shape[0], -np.log(mu.shape[0]))

    def logits_of(mu, log_pi, var, x=x):
        return log_pi[None, :] - 0.5 * (((x[:, None, :] - mu[None, :, :]) ** 2) * (1.0 / var)).sum(axis=2)

    previous = -np.inf
    for _ in range(max_iter):
        logits = logits_of(mu, log_pi, var)
        m = logits.max(axis=1)
        norm = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
        ll = norm.sum() - 0.5 * n * np.log(2 * np.pi * var).sum()
        resp = np.exp(logits - norm[:, None])
        weight = resp.sum(axis=0)
        keep = weight > 1e-8 * n  # components that lost all their mass are dropped
        resp, weight = resp[:, keep], weight[keep]
        mu = (resp.T @ x) / weight[:, None]
        log_pi = np.log(weight / n)
        # Shared diagonal covariance: sum_k sum_n r_nk (x_n - mu_k)^2 / N, expanded.
        var = np.maximum(((resp.T @ (x * x)) - weight[:, None] * mu * mu).sum(axis=0) / n, floor)
        if abs(ll - previous) < tol * abs(ll):
            break
        previous = ll
    return np.argmax(logits_of(mu, log_pi, var, everything), axis=1).astype(np.int64)


def _components(labels: np.ndarray) -> list[np.ndarray]:
    """Member indices of each label present, in label order."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return np.split(order, bounds)


def cluster_band(colors: np.ndarray, positions: np.ndarray, rng: np.random.Generator, *,
                 smoothing: tuple[int, int] = HISTOGRAM_SMOOTHING) -> list[np.ndarray]:
    """Two-level clustering of one band: member indices of each final cluster.

    Level 1 clusters the colours (``[N,3]`` in [0,1], 8-bit units inside) into
    as many components as the most peaked channel histogram has peaks;
    level 2 splits each colour cluster by position (``[N,2]``), the number of
    components from the histograms of the positions rescaled to 0..255.
    Clusters with no more than ``max(1e-4 N, 6)`` (colour) or
    ``max(1e-4 N, 3)`` (position) members are dropped; if that drops all, the
    largest cluster is kept so that the band still offers a candidate.
    """
    n = colors.shape[0]
    if n == 0:
        return []
    color8 = np.clip(np.floor(colors * 255.0 + 0.5), 0, 255)
    k = max(histogram_peaks(color8[:, c], smoothing[0]) for c in range(3))
    k = max(1, min(_round_half_up(n / 2), k))
    by_color = _keep_large(_components(fit_gmm_labels(color8, k, rng)), max(CUT_FRACTION * n, CUT_MINIMUM[0]))
    clusters = []
    for members in by_color:
        pos = positions[members]
        span = pos.max(axis=0) - pos.min(axis=0)
        scaled = np.where(span > 0, (pos - pos.min(axis=0)) * 255.0 / np.where(span > 0, span, 1.0), 0.0)
        scaled = np.clip(np.floor(scaled + 0.5), 0, 255)
        k = max(histogram_peaks(scaled[:, c], smoothing[1]) for c in range(2))
        k = max(1, min(_round_half_up(members.size / 2), k))
        parts = _components(fit_gmm_labels(pos, k, rng))
        clusters.extend(members[p] for p in parts)
    return _keep_large(clusters, max(CUT_FRACTION * n, CUT_MINIMUM[1]))


def _keep_large(clusters: list[np.ndarray], cut: float) -> list[np.ndarray]:
    kept = [c for c in clusters if c.size > cut]
    if not kept and clusters:
        kept = [max(clusters, key=lambda c: c.size)]
    return kept


def comprehensive_candidates(image, labels, label: int, thicknesses, needed=None, *, seed: int = 0) -> CandidateSet:
    """The candidate clusters of every band of region ``label`` (see :func:`cluster_band`).

    ``needed`` (bools, one per level) skips the bands no pixel samples; their
    levels are empty. A band draws its random numbers from a stream of
    ``seed`` keyed by the band, so its clusters do not depend on which other
    levels are built; a band equal to the level before reuses its clusters.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    _, bands = sampling_levels(labels, label, thicknesses)
    needed = [True] * len(bands) if needed is None else [bool(v) for v in needed]
    if len(needed) != len(bands):
        raise InputError(f"needed must have one entry per level ({len(bands)}), got {len(needed)}")
    flat = image.reshape(-1, 3)
    width = labels.shape[1]
    offsets, means, stds, positions, counts = [0], [], [], [], []
    previous = None  # (band, its rows): deep bands often cover the whole region, as the level before
    for level, band in enumerate(bands):
        if needed[level] and previous is not None and np.array_equal(band, previous[0]):
            for store in (means, stds, positions, counts):
                store.extend(store[previous[1]])
        elif needed[level]:
            start = len(means)
            pixels = np.flatnonzero(band.ravel())
            colors = flat[pixels]
            yx = np.stack([pixels // width, pixels % width], axis=1).astype(np.float64)
            # The stream depends on the band (its size), not on the level or on which levels are built.
            rng = np.random.default_rng([int(seed) & (2**63 - 1), int(label), int(pixels.size)])
            for members in cluster_band(colors, yx, rng):
                means.append(colors[members].mean(axis=0))
                stds.append(colors[members].std(axis=0, ddof=1) if members.size > 1 else np.zeros(3))
                positions.append(yx[members].mean(axis=0))
                counts.append(members.size)
            previous = (band, slice(start, len(means)))
        offsets.append(len(means))
    as2d = lambda rows, cols: np.array(rows, np.float64).reshape(-1, cols)  # noqa: E731
    return CandidateSet(np.array(offsets, np.int64), as2d(means, 3), as2d(stds, 3), as2d(positions, 2),
                        np.array(counts, np.int64))


def _candidate_arrays(candidates: CandidateSet, name: str) -> list[np.ndarray]:
    if not isinstance(candidates, CandidateSet):
        raise InputError(f"{name} must be a CandidateSet, got {type(candidates).__name__}")
    offsets = np.ascontiguousarray(candidates.offsets, np.int64)
    if offsets.ndim != 1 or offsets.size < 2 or offsets[0] != 0 or (np.diff(offsets) < 0).any():
        raise InputError(f"{name}.offsets must start at 0 and be non-decreasing with at least one level")
    k = int(offsets[-1])
    out = [offsets]
    for field, cols in (("mean", 3), ("std", 3), ("position", 2)):
        value = np.ascontiguousarray(getattr(candidates, field), np.float64)
        if value.shape != (k, cols) or not np.isfinite(value).all():
            raise InputError(f"{name}.{field} must be finite with shape ({k}, {cols}), got {value.shape}")
        out.append(value)
    if (out[2] < 0).any():
        raise InputError(f"{name}.std must be >= 0")
    return out


def select_candidate_pairs(image, pixels, fg_level, bg_level, fg: CandidateSet, bg: CandidateSet, *,
                           e_k: float = 0.5, e_s: float = 2.0, e_c: float = 0.5, color_scale: float = 255.0,
                           tolerance: float = 0.2, std_floor: float = STD_FLOOR, min_valid: int = 3) -> PairChoice:
    """Per unknown pixel the candidate pair of largest objective ``K^e_k S^e_s C^e_c`` (compiled).

    ``K = exp(-color_scale |I - (α̂F + (1-α̂)B)|)``, ``S = exp(-|z - z_F| / D_F)
    exp(-|z - z_B| / D_B)`` (``D`` the mean distance to the level's
    candidates), ``C`` Cohen's d of the two clusters over its maximum in the
    level pair; pairs with ``α̂`` outside ``[-tolerance, 1 + tolerance]`` do not
    count, and a pixel with fewer than ``min_valid`` counting pairs gets
    ``α = 0.5`` and objective 0. Full statement: csrc/ops/comprehensive_sampling.cpp.
    """
    image = as_float_image(image)
    n_pixels = image.shape[0] * image.shape[1]
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim != 1 or not np.issubdtype(pixels.dtype, np.integer):
        raise InputError(f"pixels must be a 1-D integer array, got {pixels.dtype} {pixels.shape}")
    if pixels.size and (pixels.min() < 0 or pixels.max() >= n_pixels):
        raise InputError(f"pixels hold indices in [{pixels.min()}, {pixels.max()}]; valid are [0, {n_pixels - 1}]")
    pixels = pixels.astype(np.int64)
    fg_arrays, bg_arrays = _candidate_arrays(fg, "fg"), _candidate_arrays(bg, "bg")
    lv = []
    for name, value, arrays in (("fg_level", fg_level, fg_arrays), ("bg_level", bg_level, bg_arrays)):
        value = np.ascontiguousarray(value)
        levels = arrays[0].size - 1
        if value.shape != pixels.shape or not np.issubdtype(value.dtype, np.integer):
            raise InputError(f"{name} must be an integer array of shape {pixels.shape}, got {value.dtype} {value.shape}")
        if value.size and (value.min() < 0 or value.max() >= levels):
            raise InputError(f"{name} holds levels in [{value.min()}, {value.max()}]; valid are [0, {levels - 1}]")
        lv.append(value.astype(np.int64))
    e_k, e_s, e_c = (_positive(v, name, allow_zero=True) for v, name in ((e_k, "e_k"), (e_s, "e_s"), (e_c, "e_c")))
    color_scale, std_floor = _positive(color_scale, "color_scale"), _positive(std_floor, "std_floor")
    tolerance = _positive(tolerance, "tolerance", allow_zero=True)
    min_valid = _count(min_valid, "min_valid", 1)
    if op_loaded("comprehensive_sampling_select"):
        t = lambda a: torch.from_numpy(a)  # noqa: E731
        out = torch.ops.mattezoo.comprehensive_sampling_select(
            t(image), t(pixels), t(lv[0]), t(lv[1]), *map(t, fg_arrays), *map(t, bg_arrays),
            e_k, e_s, e_c, color_scale, tolerance, std_floor, min_valid)
        return PairChoice(*(o.numpy() for o in out))
    return PairChoice(*_select_reference(image, pixels, lv[0], lv[1], fg_arrays, bg_arrays, e_k, e_s, e_c,
                                         color_scale, tolerance, std_floor, min_valid))


def _log_color_statistics(fm, fs, bm, bs, e_c, std_floor):
    """``e_c log C`` for every (F, B) pair of one level pair, as the kernel's color_statistics."""
    total = 0.0
    for c in range(3):
        pooled = np.maximum(np.sqrt((fs[:, None, c] * fs[:, None, c] + bs[None, :, c] * bs[None, :, c]) * 0.5), std_floor)
        total = total + np.abs(fm[:, None, c] - bm[None, :, c]) / pooled
    d = total / 3.0
    if e_c == 0.0:
        return np.zeros_like(d)
    dmax = d.max(initial=0.0)
    with np.errstate(divide="ignore"):
        return np.where((dmax > 0) & (d > 0), e_c * np.log(d / (dmax if dmax > 0 else 1.0)), -np.inf)


def _select_reference(image, pixels, fg_level, bg_level, fg_arrays, bg_arrays, e_k, e_s, e_c, color_scale,
                      tolerance, std_floor, min_valid, chunk: int = 256):
    """NumPy restatement of the compiled pair selection (same expressions, same order)."""
    width = image.shape[1]
    flat = image.reshape(-1, 3)
    n = pixels.size
    fg_choice, bg_choice = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    alpha, objective = np.full(n, 0.5), np.zeros(n)
    (f_off, f_mean, f_std, f_pos), (b_off, b_mean, b_std, b_pos) = fg_arrays, bg_arrays
    for lf, lb in sorted(set(zip(fg_level.tolist(), bg_level.tolist()))):
        fsl, bsl = slice(f_off[lf], f_off[lf + 1]), slice(b_off[lb], b_off[lb + 1])
        fm, fp, bm, bp = f_mean[fsl], f_pos[fsl], b_mean[bsl], b_pos[bsl]
        kf, kb = fm.shape[0], bm.shape[0]
        rows = np.flatnonzero((fg_level == lf) & (bg_level == lb))
        if kf == 0 or kb == 0:
            continue
        logc = _log_color_statistics(fm, f_std[fsl], bm, b_std[bsl], e_c, std_floor)
        d = fm[:, None, :] - bm[None, :, :]  # [kf,kb,3]
        den = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]
        for start in range(0, rows.size, chunk):
            r = rows[start:start + chunk]
            p = pixels[r]
            py, px = (p // width).astype(np.float64), (p % width).astype(np.float64)
            spatial = []
            for pos in (fp, bp):
                dy, dx = pos[None, :, 0] - py[:, None], pos[None, :, 1] - px[:, None]
                dist = np.sqrt(dy * dy + dx * dx)
                mean = dist.sum(axis=1) / dist.shape[1]
                safe = np.where(mean > 0, mean, 1.0)
                spatial.append(np.where(mean[:, None] > 0, e_s * (dist / safe[:, None]), 0.0))
            c = flat[p][:, None, None, :]  # [n,1,1,3]
            e = c - bm[None, None, :, :]
            num = e[..., 0] * d[None, ..., 0] + e[..., 1] * d[None, ..., 1] + e[..., 2] * d[None, ..., 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                al = num / den[None]
            valid = (den[None] != 0.0) & (al >= -tolerance) & (al <= 1.0 + tolerance)
            al = np.where(valid, al, 0.0)
            a = al[..., None]
            res = c - (a * fm[None, :, None, :] + (1.0 - a) * bm[None, None, :, :])
            dist = np.sqrt(res[..., 0] * res[..., 0] + res[..., 1] * res[..., 1] + res[..., 2] * res[..., 2])
            lo = -e_k * color_scale * dist - (spatial[0][:, :, None] + spatial[1][:, None, :]) + logc[None]
            counts = (valid & (lo != -np.inf)).reshape(r.size, -1).sum(axis=1)
            lo = np.where(valid, lo, -np.inf).reshape(r.size, -1)
            best = np.argmax(lo, axis=1)  # first maximum in (F, B) raster order, as the kernel's strict '>'
            ok = counts >= min_valid
            rr = r[ok]
            fg_choice[rr] = f_off[lf] + best[ok] // kb
            bg_choice[rr] = b_off[lb] + best[ok] % kb
            alpha[rr] = np.clip(al.reshape(r.size, -1)[ok, best[ok]], 0.0, 1.0)
            objective[rr] = np.exp(lo[ok, best[ok]])
    return fg_choice, bg_choice, alpha, objective
