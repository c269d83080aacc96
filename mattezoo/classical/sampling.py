"""Building blocks of the sampling-based classical methods.

Shared sampling (Gastal & Oliveira 2010) runs :func:`expand_known_regions`,
:func:`gather_ray_samples`, :func:`select_sample_pairs`,
:func:`refine_sample_pairs` and :func:`smooth_locally`; global sampling (He et
al. 2011) runs :func:`boundary_samples`, :func:`nearest_sample_distance` and
:func:`global_pair_search`. The plugins ``mattezoo_methods.shared_sampling``
and ``mattezoo_methods.global_sampling`` chain them.

Each wrapper checks its inputs (raising :class:`~mattezoo.errors.InputError`)
and runs the compiled ``mattezoo::`` op, or its NumPy restatement in
:mod:`._sampling_reference` without the extension. Both give the same samples.

Conventions: ``image`` is ``H×W×3`` RGB (float in [0,1] or uint8); ``labels``
is ``H×W`` uint8 with :data:`BACKGROUND`, :data:`FOREGROUND`, :data:`UNKNOWN`;
pixels and samples are raster indices ``y * W + x`` and ``-1`` means "none".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import torch

from ..errors import InputError
from ..ops._native import op_loaded
from . import _sampling_reference as reference
from .trimap import TrimapRegions, as_float_image

BACKGROUND, FOREGROUND, UNKNOWN = reference.BACKGROUND, reference.FOREGROUND, reference.UNKNOWN
LABELS_HELP = "uint8 with 0 (background), 1 (foreground), 2 (unknown)"


@dataclass(frozen=True)
class RaySamples:
    """What the rays of :func:`gather_ray_samples` found, one row per unknown pixel."""

    pixels: np.ndarray  # [N] int64 raster indices of the unknown pixels
    fg_index: np.ndarray  # [N,k_g] int64 first foreground pixel on each ray, -1 if none
    bg_index: np.ndarray  # [N,k_g] int64 first background pixel on each ray, -1 if none
    fg_energy: np.ndarray  # [N,k_g] float64 gradient energy from the pixel to that sample
    bg_energy: np.ndarray


@dataclass(frozen=True)
class RefinedPairs:
    """Per unknown pixel after :func:`refine_sample_pairs`: colours, alpha and confidence."""

    foreground: np.ndarray  # [N,3]
    background: np.ndarray  # [N,3]
    alpha: np.ndarray  # [N]
    confidence: np.ndarray  # [N] in [0,1]


@dataclass(frozen=True)
class PairSearch:
    """The pair each unknown pixel settled on in :func:`global_pair_search`."""

    fg_choice: np.ndarray  # [N] int64 positions in fg_samples
    bg_choice: np.ndarray  # [N] int64 positions in bg_samples
    cost: np.ndarray  # [N] float64
    alpha: np.ndarray  # [N] float64


def trimap_labels(regions: TrimapRegions) -> np.ndarray:
    """The ``H×W`` uint8 labels of a checked trimap."""
    labels = np.full(regions.unknown.shape, UNKNOWN, np.uint8)
    labels[regions.background] = BACKGROUND
    labels[regions.foreground] = FOREGROUND
    return labels


def _labels(labels, shape) -> np.ndarray:
    if not isinstance(labels, np.ndarray) or labels.dtype != np.uint8 or labels.shape != tuple(shape):
        raise InputError(f"labels must be an {shape[0]}×{shape[1]} array, {LABELS_HELP}; got "
                         f"{getattr(labels, 'dtype', type(labels).__name__)} {getattr(labels, 'shape', '')}")
    odd = np.setdiff1d(np.unique(labels), [BACKGROUND, FOREGROUND, UNKNOWN])
    if odd.size:
        raise InputError(f"labels hold values {odd.tolist()}; expected {LABELS_HELP}")
    return np.ascontiguousarray(labels)


def _count(value, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _positive(value, name: str, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise InputError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return number


def _index_array(values, n_pixels: int, name: str, shape=None, allow_missing: bool = False) -> np.ndarray:
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.integer) or (shape is not None and array.shape != tuple(shape)):
        raise InputError(f"{name} must be an integer array{'' if shape is None else f' of shape {tuple(shape)}'}, "
                         f"got {array.dtype} {array.shape}")
    low = -1 if allow_missing else 0
    if array.size and (array.min() < low or array.max() >= n_pixels):
        raise InputError(f"{name} holds indices in [{array.min()}, {array.max()}]; valid raster indices are "
                         f"[{low}, {n_pixels - 1}]")
    return np.ascontiguousarray(array, dtype=np.int64)


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def unknown_pixels(labels: np.ndarray) -> np.ndarray:
    """Raster indices of the unknown pixels, ascending."""
    return np.flatnonzero(labels.ravel() == UNKNOWN).astype(np.int64)


def expand_known_regions(image, labels, *, k_i: int = 10, k_c: float = 5 / 256) -> np.ndarray:
    """Shared sampling's first step: unknown pixels near a known pixel of nearly the same colour take its label.

    An unknown pixel ``p`` takes the label of the nearest known pixel ``q``
    with ``|p - q| <= k_i`` (pixels) and ``|C_p - C_q| <= k_c`` (RGB in [0,1]);
    ties go to the smaller row offset, then column offset. Only the input's
    known pixels count, so the result does not depend on the visiting order.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    k_i, k_c = _count(k_i, "k_i"), _positive(k_c, "k_c", allow_zero=True)
    if op_loaded("sampling_expand_known"):
        return torch.ops.mattezoo.sampling_expand_known(_t(image), _t(labels), k_i, k_c).numpy()
    return reference.expand_known(image, labels, k_i, k_c)


def gather_ray_samples(image, labels, *, k_g: int = 4) -> RaySamples:
    """Shared sampling's gathering: the first foreground and background pixel on each of ``k_g`` rays.

    Rays leave each unknown pixel at angles ``2π r / k_g`` plus a per-pixel
    rotation of ``(2π / k_g) · j / 9``, ``j = 3 (y mod 3) + (x mod 3)``, so the
    nine pixels of a 3×3 block look in different directions (their samples are
    shared later). The energy to a sample is the sum of squared colour steps
    along the ray up to it.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    k_g = _count(k_g, "k_g", 1)
    pixels = unknown_pixels(labels)
    if op_loaded("sampling_gather_rays"):
        out = torch.ops.mattezoo.sampling_gather_rays(_t(image), _t(labels), _t(pixels), k_g)
        return RaySamples(pixels, *(t.numpy() for t in out))
    return RaySamples(pixels, *reference.gather_rays(image, labels, pixels, k_g))


def select_sample_pairs(image, samples: RaySamples, *, e_n: float = 3.0, e_a: float = 2.0, e_f: float = 1.0,
                        e_b: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Shared sampling's selection: per pixel the gathered pair minimising the paper's objective (eq. 7).

    ``g_p(f, b) = N_p(f, b)^e_n · A_p(f, b)^e_a · D_p(f)^e_f · D_p(b)^e_b`` with
    ``N_p`` the squared distortions summed over the 3×3 neighbourhood,
    ``A_p = P_F + (1 - 2 P_F) α̂_p``, ``P_F = min E_b / (min E_f + min E_b)``
    from the ray energies, and ``D_p`` the pixel distance to the sample.
    Returns raster indices ``(fg, bg)``, ``-1`` for pixels without a pair.
    """
    image = as_float_image(image)
    n_pixels = image.shape[0] * image.shape[1]
    pixels = _index_array(samples.pixels, n_pixels, "pixels")
    shape = np.shape(samples.fg_index)
    if len(shape) != 2 or shape[0] != pixels.size:
        raise InputError(f"fg_index must be [N,k] with N = {pixels.size} pixels, got {shape}")
    fg_index = _index_array(samples.fg_index, n_pixels, "fg_index", shape, allow_missing=True)
    bg_index = _index_array(samples.bg_index, n_pixels, "bg_index", shape, allow_missing=True)
    energies = []
    for name in ("fg_energy", "bg_energy"):
        energy = np.ascontiguousarray(getattr(samples, name), dtype=np.float64)
        if energy.shape != shape or not np.isfinite(energy).all() or (energy < 0).any():
            raise InputError(f"{name} must be finite, >= 0 and of shape {shape}")
        energies.append(energy)
    exponents = [_positive(v, name, allow_zero=True) for v, name in ((e_n, "e_n"), (e_a, "e_a"), (e_f, "e_f"), (e_b, "e_b"))]
    if op_loaded("shared_sampling_select"):
        fg, bg = torch.ops.mattezoo.shared_sampling_select(_t(image), _t(pixels), _t(fg_index), _t(bg_index),
                                                           _t(energies[0]), _t(energies[1]), *exponents)
        return fg.numpy(), bg.numpy()
    return reference.select_pairs(image, pixels, fg_index, bg_index, *energies, *exponents)


def refine_sample_pairs(image, labels, pixels, fg, bg, *, k_r: int = 200, n_best: int = 3,
                        lam: float = 10.0) -> RefinedPairs:
    """Shared sampling's refinement: each pixel borrows the best pairs of its neighbours.

    Among the pairs of the ``k_r`` closest unknown pixels (within a radius of
    ``√k_r``), the ``n_best`` with the smallest distortion ``M_p`` are averaged
    into ``F̃, B̃``. A pixel whose colour lies within the averaged sample's
    colour spread (mean squared distance over its 5×5 neighbourhood) keeps its
    own colour as ``F`` (or ``B``). Confidence ``exp(-lam · M_p(F̃, B̃))``.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    n_pixels = labels.size
    pixels = _index_array(pixels, n_pixels, "pixels")
    if not np.array_equal(pixels, unknown_pixels(labels)):
        raise InputError("pixels must be the unknown pixels of labels in raster order (see unknown_pixels)")
    fg = _index_array(fg, n_pixels, "fg", pixels.shape, allow_missing=True)
    bg = _index_array(bg, n_pixels, "bg", pixels.shape, allow_missing=True)
    k_r, n_best, lam = _count(k_r, "k_r", 1), _count(n_best, "n_best", 1), _positive(lam, "lam", allow_zero=True)
    if op_loaded("shared_sampling_refine"):
        out = torch.ops.mattezoo.shared_sampling_refine(_t(image), _t(labels), _t(pixels), _t(fg), _t(bg), k_r, n_best, lam)
        return RefinedPairs(*(t.numpy() for t in out))
    return RefinedPairs(*reference.refine_pairs(image, labels, pixels, fg, bg, k_r, n_best, lam))


def smooth_locally(image, labels, pixels, refined: RefinedPairs, *, m: float = 100.0, lam: float = 10.0) -> np.ndarray:
    """Shared sampling's local smoothing: the final alpha of each unknown pixel.

    Over a disc of about ``m`` pixels (Gaussian of variance ``m / 9π`` cut at
    3σ) the neighbours' colours are averaged with weights favouring confident
    neighbours of different alpha, giving ``F'``, ``B'``; the confidence
    ``min(1, |F' - B'| / D_FB) · exp(-lam · M_p(F', B'))`` blends the alpha of
    ``F', B'`` with the confidence-weighted mean alpha of the neighbourhood.
    Known pixels count with ``F = B = C``, their label as alpha, confidence 1.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    pixels = _index_array(pixels, labels.size, "pixels")
    if not np.array_equal(pixels, unknown_pixels(labels)):
        raise InputError("pixels must be the unknown pixels of labels in raster order (see unknown_pixels)")
    n = pixels.size
    arrays = []
    for name, shape in (("foreground", (n, 3)), ("background", (n, 3)), ("alpha", (n,)), ("confidence", (n,))):
        value = np.ascontiguousarray(getattr(refined, name), dtype=np.float64)
        if value.shape != shape or not np.isfinite(value).all():
            raise InputError(f"refined.{name} must be finite with shape {shape}, got {value.shape}")
        arrays.append(value)
    if (arrays[2] < 0).any() or (arrays[2] > 1).any() or (arrays[3] < 0).any() or (arrays[3] > 1).any():
        raise InputError("refined.alpha and refined.confidence must lie in [0,1]")
    m, lam = _positive(m, "m"), _positive(lam, "lam", allow_zero=True)
    if op_loaded("shared_sampling_smooth"):
        return torch.ops.mattezoo.shared_sampling_smooth(_t(image), _t(labels), _t(pixels), *(_t(a) for a in arrays),
                                                         m, lam).numpy()
    return reference.smooth_locally(image, labels, pixels, *arrays, m, lam)


def boundary_samples(image, labels) -> tuple[np.ndarray, np.ndarray]:
    """Global sampling's sample sets: known pixels 4-adjacent to an unknown pixel.

    Returns the raster indices of the foreground and the background samples,
    each sorted by intensity ``R + G + B`` (ties by raster index), the order
    in which the pair search treats them as a 2-D space. A region that does
    not touch the unknown pixels at all (e.g. foreground enclosed by
    background) offers all its pixels instead, so that the search still has
    samples of it.
    """
    image = as_float_image(image)
    labels = _labels(labels, image.shape[:2])
    near_unknown = scipy.ndimage.binary_dilation(labels == UNKNOWN, structure=scipy.ndimage.generate_binary_structure(2, 1))
    intensity = image.sum(axis=2).ravel()
    sets = []
    for label in (FOREGROUND, BACKGROUND):
        samples = np.flatnonzero(((labels == label) & near_unknown).ravel())
        if samples.size == 0:
            samples = np.flatnonzero((labels == label).ravel())
        sets.append(samples[np.argsort(intensity[samples], kind="stable")].astype(np.int64))
    return sets[0], sets[1]


def nearest_sample_distance(shape, samples, pixels) -> np.ndarray:
    """Euclidean distance (pixels) from each of ``pixels`` to the nearest of ``samples`` (both raster indices)."""
    height, width = shape
    samples = _index_array(samples, height * width, "samples")
    pixels = _index_array(pixels, height * width, "pixels")
    if samples.size == 0:
        raise InputError("nearest_sample_distance needs at least one sample")
    free = np.ones(height * width, bool)
    free[samples] = False
    return scipy.ndimage.distance_transform_edt(free.reshape(height, width)).ravel()[pixels]


def global_pair_search(image, pixels, fg_samples, bg_samples, fg_dist, bg_dist, *, kappa: float = 1.0,
                       color_scale: float = 255.0, iterations: int = 10, seed: int = 0) -> PairSearch:
    """Global sampling's randomised search for each pixel's best (F, B) sample pair.

    Cost (paper eqs. 3-5): ``kappa · color_scale · |C - (α̂F + (1-α̂)B)|
    + |x_F - x| / fg_dist + |x_B - x| / bg_dist`` (``color_scale`` 255 measures
    the colour term in 8-bit units, as the paper). Pairs live in the 2-D space
    of the intensity-sorted sample lists; each iteration propagates the pairs
    of already-visited neighbours and tries random pairs at halving radii
    (alternating scan directions). The random draws hash ``seed``, so the
    result depends on the seed alone.
    """
    image = as_float_image(image)
    n_pixels = image.shape[0] * image.shape[1]
    pixels = _index_array(pixels, n_pixels, "pixels")
    if pixels.size > 1 and (np.diff(pixels) <= 0).any():
        raise InputError("pixels must be strictly ascending raster indices")
    fg_samples = _index_array(fg_samples, n_pixels, "fg_samples")
    bg_samples = _index_array(bg_samples, n_pixels, "bg_samples")
    if fg_samples.size == 0 or bg_samples.size == 0:
        raise InputError(f"the search needs foreground and background samples, got {fg_samples.size} and {bg_samples.size}")
    dists = []
    for name, value in (("fg_dist", fg_dist), ("bg_dist", bg_dist)):
        value = np.ascontiguousarray(value, dtype=np.float64)
        if value.shape != pixels.shape or not np.isfinite(value).all() or (value <= 0).any():
            raise InputError(f"{name} must be finite, > 0 and of shape {pixels.shape}")
        dists.append(value)
    weight = _positive(kappa, "kappa", allow_zero=True) * _positive(color_scale, "color_scale")
    iterations = _count(iterations, "iterations")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not -(2**63) <= seed < 2**63:
        raise InputError(f"seed must be an int in the int64 range, got {seed!r}")
    if op_loaded("global_sampling_search"):
        out = torch.ops.mattezoo.global_sampling_search(_t(image), _t(pixels), _t(fg_samples), _t(bg_samples),
                                                        _t(dists[0]), _t(dists[1]), weight, iterations, int(seed))
        return PairSearch(*(t.numpy() for t in out))
    return PairSearch(*reference.global_search(image, pixels, fg_samples, bg_samples, *dists, weight, iterations, int(seed)))
