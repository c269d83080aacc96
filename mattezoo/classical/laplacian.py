"""Sparse matting Laplacians and the constrained systems built from them.

A propagation method (closed-form, KNN, and the other Laplacian-based methods
of the P3M paper's Table 1) minimises ``alpha^T L alpha`` with the trimap's
known pixels held fixed. Splitting the pixels into unknown ``U`` and known
``K`` gives the symmetric positive definite system (Grady et al. 2005)

    L_UU alpha_U = -L_UK alpha_K

which :func:`mattezoo.classical.solver.solve_cg` solves. The builders here
assemble only the unknown rows, in the compiled ops
``mattezoo::cf_laplacian_system`` and ``mattezoo::knn_laplacian_system``, and
fall back to the NumPy/SciPy references in :mod:`._laplacian_reference` when
the extension is missing or disabled (``MATTEZOO_DISABLE_EXT=1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from ..errors import InputError
from ..ops._native import op_loaded
from . import _laplacian_reference as reference


@dataclass(frozen=True)
class LinearSystem:
    """``matrix @ x = rhs`` over the unknown pixels (raster order) of an ``H×W`` image."""

    matrix: scipy.sparse.csr_matrix
    rhs: np.ndarray
    unknown: np.ndarray  # H×W bool

    def scatter(self, x: np.ndarray, known_alpha: np.ndarray) -> np.ndarray:
        """The full ``H×W`` matte: ``known_alpha`` with the solution written into the unknown pixels."""
        alpha = np.array(known_alpha, dtype=np.float64, copy=True)
        alpha[self.unknown] = x
        return alpha


def _csr(indptr, indices, values, n) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix((values.numpy(), indices.numpy(), indptr.numpy()), shape=(n, n))


def _masks(unknown: np.ndarray, known_alpha: np.ndarray, shape: tuple[int, int]):
    unknown = np.ascontiguousarray(unknown, dtype=bool)
    known_alpha = np.ascontiguousarray(known_alpha, dtype=np.float64)
    if unknown.shape != shape or known_alpha.shape != shape:
        raise InputError(f"unknown {unknown.shape} and known_alpha {known_alpha.shape} must both be {shape}")
    return unknown, known_alpha


def cf_laplacian_system(image: np.ndarray, unknown: np.ndarray, known_alpha: np.ndarray, *, epsilon: float = 1e-7,
                        radius: int = 1) -> LinearSystem:
    """The closed-form matting system (Levin et al. 2008) over the unknown pixels.

    :param image: ``H×W×3`` float64 RGB in [0,1].
    :param unknown: ``H×W`` bool, the pixels to solve for.
    :param known_alpha: ``H×W`` float, the fixed alpha of the other pixels.
    :param epsilon: regulariser ε of the colour-line model; the window
        covariance gets ``ε/|w|`` on its diagonal (paper default 1e-7).
    :param radius: window radius r, windows are ``(2r+1)×(2r+1)`` (paper: 1).
    """
    image = np.ascontiguousarray(image, dtype=np.float64)
    height, width = image.shape[:2]
    unknown, known_alpha = _masks(unknown, known_alpha, (height, width))
    if not isinstance(radius, (int, np.integer)) or radius < 1:
        raise InputError(f"radius must be an int >= 1, got {radius!r}")
    if not epsilon > 0:
        raise InputError(f"epsilon must be > 0, got {epsilon!r}")
    if min(height, width) < 2 * radius + 1:
        raise InputError(f"image {height}×{width} is smaller than one {2 * radius + 1}×{2 * radius + 1} window (radius={radius})")
    n = int(unknown.sum())
    if op_loaded("cf_laplacian_system"):
        indptr, indices, values, rhs = torch.ops.mattezoo.cf_laplacian_system(
            torch.from_numpy(image), torch.from_numpy(unknown), torch.from_numpy(known_alpha), float(epsilon), int(radius)
        )
        return LinearSystem(_csr(indptr, indices, values, n), rhs.numpy(), unknown)
    full = reference.cf_laplacian(image, epsilon, radius)
    matrix, rhs = reference.restrict(full, unknown, known_alpha)
    return LinearSystem(matrix, rhs, unknown)


def cf_laplacian(image: np.ndarray, *, epsilon: float = 1e-7, radius: int = 1) -> scipy.sparse.csr_matrix:
    """The full ``HW×HW`` closed-form matting Laplacian (every pixel unknown)."""
    shape = np.shape(image)[:2]
    return cf_laplacian_system(image, np.ones(shape, bool), np.zeros(shape), epsilon=epsilon, radius=radius).matrix


def knn_laplacian_system(neighbors: np.ndarray, unknown: np.ndarray, known_alpha: np.ndarray,
                         weights: np.ndarray | None = None) -> LinearSystem:
    """The KNN matting system (Chen et al. 2013) over the unknown pixels.

    :param neighbors: ``N×K`` int, row ``i`` lists the neighbours of pixel ``i``
        (raster order, ``N = H·W``); a pixel's own index is ignored.
    :param unknown: ``H×W`` bool; ``known_alpha``: ``H×W`` float.
    :param weights: ``N×K`` kernel values, or ``None`` for 1 (binary kernel).
    The affinity is symmetrised, ``W = A + Aᵀ``, and ``L = D − W``.
    """
    shape = np.shape(unknown)
    unknown, known_alpha = _masks(unknown, known_alpha, shape)
    neighbors = np.ascontiguousarray(neighbors, dtype=np.int64)
    n_pixels = unknown.size
    if neighbors.ndim != 2 or neighbors.shape[0] != n_pixels:
        raise InputError(f"neighbors must be N×K with N = {n_pixels} pixels, got {neighbors.shape}")
    if neighbors.size and (neighbors.min() < 0 or neighbors.max() >= n_pixels):
        raise InputError(f"neighbor indices must lie in [0, {n_pixels}), got [{neighbors.min()}, {neighbors.max()}]")
    if weights is not None:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if weights.shape != neighbors.shape:
            raise InputError(f"weights must have the shape of neighbors {neighbors.shape}, got {weights.shape}")
    n = int(unknown.sum())
    if op_loaded("knn_laplacian_system"):
        w = torch.from_numpy(weights) if weights is not None else torch.empty(0, dtype=torch.float64)
        indptr, indices, values, rhs = torch.ops.mattezoo.knn_laplacian_system(
            torch.from_numpy(neighbors), w, torch.from_numpy(unknown.ravel()), torch.from_numpy(known_alpha.ravel())
        )
        return LinearSystem(_csr(indptr, indices, values, n), rhs.numpy(), unknown)
    full = reference.knn_laplacian(neighbors, weights)
    matrix, rhs = reference.restrict(full, unknown, known_alpha)
    return LinearSystem(matrix, rhs, unknown)
