"""Shared sampling: Gastal & Oliveira, "Shared Sampling for Real-Time Alpha
Matting", Computer Graphics Forum 29(2) (Eurographics), 2010.

Neighbouring pixels tend to share their foreground and background colours, so
each pixel gathers only a few samples and then borrows the best pairs found by
its neighbours. The steps (:mod:`mattezoo.classical.sampling`, compiled):

1. Expansion of the known regions: an unknown pixel within ``k_i`` pixels and
   colour distance ``k_c`` of a known pixel takes its label (nearest first).
2. Sample gathering: ``k_g`` rays per unknown pixel, their set rotated
   differently for each pixel of a 3×3 block; the first foreground and the
   first background pixel on each ray are its samples.
3. Sample selection: the pair minimising
   ``N_p^e_n · A_p^e_a · D_p(f)^e_f · D_p(b)^e_b`` (paper eq. 7): the
   neighbourhood's squared chromatic distortion, the agreement of alpha with
   the probability ``P_F`` of being foreground (from the gradient energies
   along the rays), and the distances to the samples.
4. Sample refinement: the ``n_best`` (3) pairs with the smallest distortion
   among the ``k_r`` closest unknown pixels are averaged; colours within the
   samples' own spread are kept; confidence ``exp(-lam · M_p)``.
5. Local smoothing: confidence-weighted Gaussian averaging of colours and
   alpha over about ``m`` pixels; the final alpha blends the smoothed pair's
   alpha with the local mean alpha by the final confidence.

Parameters and the paper's values: ``k_i = 10``, ``k_c = 5/256``, ``k_g = 4``,
``e_n = 3``, ``e_a = 2``, ``e_f = 1``, ``e_b = 4``, ``k_r = 200``, ``lam = 10``,
``m = 100``. What is ours: the discretisation (rays advance one pixel per step
along their major axis; the energy integral is a sum of squared colour steps;
the nine rotations are ``(2π/k_g)·j/9``), the ``k_r`` closest pixels are
looked for within a radius of ``√k_r``, the colour spread of a sample is its
mean squared colour distance to its 5×5 neighbourhood, and the Gaussian of
step 5 has variance ``m / 9π`` (so that its 3σ disc covers ``m`` pixels).
The method has no random step, so it needs no seed. The paper's optional
matting-Laplacian post-process ("Shared Matting+") is not part of this method.
"""

from __future__ import annotations

import numpy as np

from mattezoo import MethodSpec, PaperResult, hookimpl
from mattezoo.classical import as_float_image, split_trimap
from mattezoo.classical.method import TrimapPropagationMethod
from mattezoo.classical.sampling import (
    FOREGROUND,
    expand_known_regions,
    gather_ray_samples,
    refine_sample_pairs,
    select_sample_pairs,
    smooth_locally,
    trimap_labels,
    unknown_pixels,
)
from mattezoo.errors import InputError

CITATION = "Gastal, Oliveira. Shared Sampling for Real-Time Alpha Matting. Computer Graphics Forum 29(2), 2010."

DEFAULTS = dict(k_i=10, k_c=5 / 256, k_g=4, e_n=3.0, e_a=2.0, e_f=1.0, e_b=4.0, k_r=200, n_best=3, lam=10.0, m=100.0)


def check_options(options: dict) -> dict:
    """The full option set (defaults filled in); raises :class:`InputError` for unknown names or bad values."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise InputError(f"unknown shared_sampling options {unknown}; valid: {', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **options}
    for name in ("k_i", "k_g", "k_r", "n_best"):
        value = merged[name]
        low = 0 if name == "k_i" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name} must be an int >= {low}, got {value!r}")
    for name in ("k_c", "e_n", "e_a", "e_f", "e_b", "lam", "m"):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
            raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    if merged["m"] <= 0:
        raise InputError(f"m must be > 0, got {merged['m']!r}")
    return merged


def estimate_alpha_shared_sampling(image, trimap, *, k_i: int = 10, k_c: float = 5 / 256, k_g: int = 4,
                                   e_n: float = 3.0, e_a: float = 2.0, e_f: float = 1.0, e_b: float = 4.0,
                                   k_r: int = 200, n_best: int = 3, lam: float = 10.0, m: float = 100.0) -> np.ndarray:
    """Alpha matte of ``image`` by shared sampling (see the module docstring for the steps).

    :param image: ``H×W×3`` RGB, float in [0,1] or uint8.
    :param trimap: ``H×W``, uint8 0/128/255 or float 0 / (0,1) / 1.
    :param k_i, k_c: expansion radius (pixels) and colour distance (RGB in [0,1]).
    :param k_g: rays per pixel.
    :param e_n, e_a, e_f, e_b: exponents of the selection objective.
    :param k_r, n_best: pixels whose pairs are compared in the refinement, and how many best pairs are averaged.
    :param lam: λ of the confidences ``exp(-λ M_p)``.
    :param m: pixels covered by the local smoothing.
    :return: ``H×W`` float64 alpha in [0,1]; a trimap without unknown pixels is returned at once.
    """
    options = check_options(dict(k_i=k_i, k_c=k_c, k_g=k_g, e_n=e_n, e_a=e_a, e_f=e_f, e_b=e_b, k_r=k_r,
                                 n_best=n_best, lam=lam, m=m))
    image = as_float_image(image)
    regions = split_trimap(trimap, image.shape[:2])
    if not regions.unknown.any():
        return regions.known_alpha()
    labels = expand_known_regions(image, trimap_labels(regions), k_i=options["k_i"], k_c=options["k_c"])
    alpha = (labels == FOREGROUND).astype(np.float64)
    pixels = unknown_pixels(labels)
    if pixels.size == 0:  # the expansion decided every pixel
        return alpha
    samples = gather_ray_samples(image, labels, k_g=options["k_g"])
    fg, bg = select_sample_pairs(image, samples, e_n=options["e_n"], e_a=options["e_a"], e_f=options["e_f"],
                                 e_b=options["e_b"])
    refined = refine_sample_pairs(image, labels, pixels, fg, bg, k_r=options["k_r"], n_best=options["n_best"],
                                  lam=options["lam"])
    alpha.ravel()[pixels] = smooth_locally(image, labels, pixels, refined, m=options["m"], lam=options["lam"])
    return alpha


class SharedSampling(TrimapPropagationMethod):
    """The ``shared_sampling`` method object: ``obj(image [B,3,H,W], trimap [B,1,H,W]) -> alpha [B,1,H,W]``."""

    def __init__(self, k_i: int = 10, k_c: float = 5 / 256, k_g: int = 4, e_n: float = 3.0, e_a: float = 2.0,
                 e_f: float = 1.0, e_b: float = 4.0, k_r: int = 200, n_best: int = 3, lam: float = 10.0, m: float = 100.0):
        options = check_options(dict(k_i=k_i, k_c=k_c, k_g=k_g, e_n=e_n, e_a=e_a, e_f=e_f, e_b=e_b, k_r=k_r,
                                     n_best=n_best, lam=lam, m=m))
        for name, value in options.items():
            setattr(self, name, value)

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        return estimate_alpha_shared_sampling(image, trimap, **{name: getattr(self, name) for name in DEFAULTS})


@hookimpl
def mattezoo_register_methods():
    # P3M paper Table 1 ("Shared"), rows B (blurred) and N (normal) of
    # P3M-500-P; no training protocol applies to a classical method.
    return [
        MethodSpec(
            name="shared_sampling",
            family="classical",
            factory="mattezoo_methods.shared_sampling:SharedSampling",
            summary="Shared sampling: ray-gathered F/B samples shared between neighbours, refined and locally smoothed",
            citation=CITATION,
            paper_results=(
                PaperResult("P3M Table 1", "P3M-500-P (blurred)", {"SAD": 10.553, "MSE": 0.0285, "MAD": 0.0774}),
                PaperResult("P3M Table 1", "P3M-500-P (normal)", {"SAD": 10.386, "MSE": 0.0277, "MAD": 0.0760}),
            ),
        )
    ]
