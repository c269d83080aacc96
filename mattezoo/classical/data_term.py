"""The matting Laplacian with a per-pixel data term: how sampling methods smooth their estimates.

Sampling methods (global, robust, comprehensive sampling) estimate an alpha
``α̂_i`` and a weight ``w_i`` (a scaled confidence) for each unknown pixel,
then solve

    min_α  αᵀLα + Σ_i w_i (α_i - α̂_i)²

over the unknown pixels, with the trimap's known pixels as hard constraints
and ``L`` the closed-form matting Laplacian (Levin et al. 2008). Robust
matting's two virtual nodes (weights ``W_F`` to alpha 1 and ``W_B`` to 0)
are the same energy with ``w = W_F + W_B`` and ``α̂ = W_F / (W_F + W_B)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from ..errors import InputError
from .laplacian import cf_laplacian_system
from .solver import solve_cg
from .trimap import TrimapRegions


def solve_with_data_term(image: np.ndarray, regions: TrimapRegions, estimate: np.ndarray, weights: np.ndarray, *,
                         epsilon: float = 1e-7, radius: int = 1, preconditioner="ichol", rtol: float = 1e-7,
                         maxiter: int = 10000) -> np.ndarray:
    """The ``H×W`` float64 alpha in [0,1] minimising the energy above.

    :param image: ``H×W×3`` float64 RGB in [0,1] (see :func:`~mattezoo.classical.as_float_image`).
    :param regions: the checked trimap (see :func:`~mattezoo.classical.split_trimap`).
    :param estimate, weights: ``[N]`` float64 ``α̂`` and ``w >= 0`` of the unknown pixels, in raster order.
    :param epsilon, radius: of the closed-form Laplacian.
    :param preconditioner, rtol, maxiter: see :func:`~mattezoo.classical.solve_cg`.
    """
    known_alpha = regions.known_alpha()
    n = int(regions.unknown.sum())
    estimate, weights = np.asarray(estimate, np.float64), np.asarray(weights, np.float64)
    if estimate.shape != (n,) or weights.shape != (n,):
        raise InputError(f"estimate and weights must have one entry per unknown pixel ({n}), "
                         f"got {estimate.shape} and {weights.shape}")
    # The system's rows are the unknown pixels in raster order, as `estimate`.
    system = cf_laplacian_system(image, regions.unknown, known_alpha, epsilon=epsilon, radius=radius)
    matrix = system.matrix + scipy.sparse.diags(weights)
    x = solve_cg(matrix, system.rhs + weights * estimate, preconditioner=preconditioner, rtol=rtol, maxiter=maxiter)
    return np.clip(system.scatter(x, known_alpha), 0.0, 1.0)
