"""Global sampling: He, Rhemann, Rother, Tang, Sun, "A Global Sampling Method
for Alpha Matting", CVPR 2011.

Instead of a few samples near each pixel, every known pixel on the boundary
of the foreground and of the background region is a candidate sample
(:func:`mattezoo.classical.sampling.boundary_samples`). Each unknown pixel
looks for the pair ``(F_i, B_j)`` minimising (paper eqs. 3-5)

    ε(F_i, B_j) = κ ε_c(F_i, B_j) + ε_s(F_i) + ε_s(B_j),

the chromatic distortion ``ε_c = |I - (α̂F + (1-α̂)B)|`` (8-bit units, κ = 1)
plus the spatial costs ``ε_s(F_i) = |x_F - x| / D_F``, the distance to the
sample over the distance to the nearest foreground sample (likewise for B).
The pairs form a 2-D space (foreground samples × background samples, each
list sorted by intensity); a PatchMatch-like randomised search (propagation
from neighbours plus random search at halving radii, 10 iterations) finds
good pairs fast (:func:`mattezoo.classical.sampling.global_pair_search`,
compiled). Alpha is the projection ``α̂`` of the best pair.

Post-processing (on by default, as in the paper's reported results): the
closed-form matting Laplacian smooths the sampled alphas, which enter as a
data term weighted by their confidence,

    min_α  αᵀLα + γ Σ_i c_i (α_i - α̂_i)²,  c_i = exp(-ε_c,i / σ),

with the trimap's known pixels as hard constraints, solved by preconditioned
CG. The paper takes this step from Rhemann et al. and Gastal & Oliveira
without fixing γ and σ; ``gamma = 0.003`` and ``sigma = 3`` (8-bit colour
units) are ours, chosen on the shared test composites (tests/classical),
where a larger γ let the sampling's errors through (SAD rose steadily with
γ from 0.003 to 0.1) and a smaller one leaves plain closed-form matting.
``smooth=False`` returns the raw sampled matte.

Also ours: samples are 4-adjacent to the unknown region; random offsets are
drawn in ``[-r, r]²`` and clamped to the lists; the random numbers hash
``seed``, so a matte depends on the seed alone.
"""

from __future__ import annotations

import numpy as np

from mattezoo import MethodSpec, PaperResult, hookimpl
from mattezoo.classical import as_float_image, solve_with_data_term, split_trimap
from mattezoo.classical._sampling_reference import distortion
from mattezoo.classical.method import TrimapPropagationMethod
from mattezoo.classical.sampling import (
    boundary_samples,
    global_pair_search,
    nearest_sample_distance,
    trimap_labels,
    unknown_pixels,
)
from mattezoo.errors import InputError

CITATION = "He, Rhemann, Rother, Tang, Sun. A Global Sampling Method for Alpha Matting. CVPR 2011."
COLOR_SCALE = 255.0  # the paper's colour distances are in 8-bit units


def _check(kappa, iterations, gamma, sigma, seed) -> None:
    for name, value in (("kappa", kappa), ("gamma", gamma), ("sigma", sigma)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
            raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    if sigma <= 0:
        raise InputError(f"sigma must be > 0, got {sigma!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise InputError(f"iterations must be an int >= 0, got {iterations!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an int, got {seed!r}")


def sample_pairs(image: np.ndarray, labels: np.ndarray, *, kappa: float = 1.0, iterations: int = 10, seed: int = 0):
    """The search's result for the unknown pixels of ``labels``: ``(pixels, PairSearch, fg_samples, bg_samples)``."""
    pixels = unknown_pixels(labels)
    fg_samples, bg_samples = boundary_samples(image, labels)
    fg_dist = nearest_sample_distance(labels.shape, fg_samples, pixels)
    bg_dist = nearest_sample_distance(labels.shape, bg_samples, pixels)
    search = global_pair_search(image, pixels, fg_samples, bg_samples, fg_dist, bg_dist, kappa=kappa,
                                color_scale=COLOR_SCALE, iterations=iterations, seed=seed)
    return pixels, search, fg_samples, bg_samples


def estimate_alpha_global_sampling(image, trimap, *, kappa: float = 1.0, iterations: int = 10, seed: int = 0,
                                   smooth: bool = True, gamma: float = 0.003, sigma: float = 3.0,
                                   epsilon: float = 1e-7, preconditioner="ichol", rtol: float = 1e-7,
                                   maxiter: int = 10000) -> np.ndarray:
    """Alpha matte of ``image`` by global sampling (see the module docstring).

    :param image: ``H×W×3`` RGB, float in [0,1] or uint8.
    :param trimap: ``H×W``, uint8 0/128/255 or float 0 / (0,1) / 1.
    :param kappa: weight κ of the colour cost against the spatial costs (paper: 1, colours in 8-bit units).
    :param iterations: rounds of propagation and random search (paper: 10).
    :param seed: seeds the random initial pairs and the random search.
    :param smooth: apply the matting-Laplacian post-processing.
    :param gamma, sigma: data-term weight γ and confidence scale σ (8-bit units) of the post-processing.
    :param epsilon, preconditioner, rtol, maxiter: of the closed-form Laplacian and its CG solve.
    :return: ``H×W`` float64 alpha in [0,1]; a trimap without unknown pixels is returned at once.
    """
    _check(kappa, iterations, gamma, sigma, seed)
    image = as_float_image(image)
    regions = split_trimap(trimap, image.shape[:2])
    known_alpha = regions.known_alpha()
    if not regions.unknown.any():
        return known_alpha
    labels = trimap_labels(regions)
    pixels, search, fg_samples, bg_samples = sample_pairs(image, labels, kappa=kappa, iterations=iterations, seed=seed)
    alpha = known_alpha.copy()
    alpha.ravel()[pixels] = search.alpha
    if not smooth:
        return alpha
    flat = image.reshape(-1, 3)
    fg, bg = flat[fg_samples[search.fg_choice]], flat[bg_samples[search.bg_choice]]
    color_cost = COLOR_SCALE * distortion(flat[pixels], fg, bg, search.alpha)
    weights = gamma * np.exp(-color_cost / sigma)
    # `pixels` are the unknown pixels in raster order, as the solve expects.
    return solve_with_data_term(image, regions, search.alpha, weights, epsilon=epsilon,
                                preconditioner=preconditioner, rtol=rtol, maxiter=maxiter)


class GlobalSampling(TrimapPropagationMethod):
    """The ``global_sampling`` method object: ``obj(image [B,3,H,W], trimap [B,1,H,W]) -> alpha [B,1,H,W]``."""

    def __init__(self, kappa: float = 1.0, iterations: int = 10, seed: int = 0, smooth: bool = True, gamma: float = 0.003,
                 sigma: float = 3.0, preconditioner: str = "ichol", rtol: float = 1e-7):
        _check(kappa, iterations, gamma, sigma, seed)
        self.kappa, self.iterations, self.seed, self.smooth = kappa, iterations, seed, bool(smooth)
        self.gamma, self.sigma, self.preconditioner, self.rtol = gamma, sigma, preconditioner, rtol

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        return estimate_alpha_global_sampling(image, trimap, kappa=self.kappa, iterations=self.iterations, seed=self.seed,
                                              smooth=self.smooth, gamma=self.gamma, sigma=self.sigma,
                                              preconditioner=self.preconditioner, rtol=self.rtol)


@hookimpl
def mattezoo_register_methods():
    # P3M paper Table 1 ("Global"), rows B (blurred) and N (normal) of
    # P3M-500-P; no training protocol applies to a classical method.
    return [
        MethodSpec(
            name="global_sampling",
            family="classical",
            factory="mattezoo_methods.global_sampling:GlobalSampling",
            summary="Global sampling: randomised search over all boundary F/B sample pairs, matting-Laplacian smoothing",
            citation=CITATION,
            paper_results=(
                PaperResult("P3M Table 1", "P3M-500-P (blurred)", {"SAD": 9.6157, "MSE": 0.0242, "MAD": 0.0708}),
                PaperResult("P3M Table 1", "P3M-500-P (normal)", {"SAD": 9.4908, "MSE": 0.0236, "MAD": 0.0698}),
            ),
        )
    ]
