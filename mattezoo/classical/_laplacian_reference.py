"""NumPy/SciPy reference Laplacians: the fallback when ``mattezoo._C`` is
missing, and the independent oracle the tests compare the compiled ops with.

They build the full ``HW×HW`` matrix from per-window (or per-edge) triplets,
written from the papers' formulas rather than from the C++ kernels, and are
meant for correctness, not speed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse


def cf_laplacian(image: np.ndarray, epsilon: float, radius: int) -> scipy.sparse.csr_matrix:
    """Levin et al. 2008, eq. 12, summed over all fully interior windows."""
    height, width, _ = image.shape
    size = 2 * radius + 1
    area = size * size
    index = np.arange(height * width).reshape(height, width)
    # [n_windows, area] pixel indices and [n_windows, area, 3] colours of every window.
    win_index = np.lib.stride_tricks.sliding_window_view(index, (size, size)).reshape(-1, area)
    colours = image.reshape(-1, 3)[win_index]
    mean = colours.mean(axis=1, keepdims=True)
    centred = colours - mean
    cov = np.einsum("wpc,wpd->wcd", centred, centred) / area + (epsilon / area) * np.eye(3)
    inv = np.linalg.inv(cov)
    affinity = (1.0 + np.einsum("wpc,wcd,wqd->wpq", centred, inv, centred)) / area
    values = np.eye(area)[None] - affinity
    rows = np.repeat(win_index[:, :, None], area, axis=2)
    cols = np.repeat(win_index[:, None, :], area, axis=1)
    n = height * width
    return scipy.sparse.coo_matrix((values.ravel(), (rows.ravel(), cols.ravel())), shape=(n, n)).tocsr()


def knn_laplacian(neighbors: np.ndarray, weights: np.ndarray | None) -> scipy.sparse.csr_matrix:
    """``D − (A + Aᵀ)`` for the directed neighbour graph ``A``, self pairs dropped."""
    n, k = neighbors.shape
    rows = np.repeat(np.arange(n), k)
    cols = neighbors.ravel()
    w = np.ones(n * k) if weights is None else weights.ravel().astype(np.float64)
    keep = rows != cols
    a = scipy.sparse.coo_matrix((w[keep], (rows[keep], cols[keep])), shape=(n, n)).tocsr()
    affinity = (a + a.T).tocsr()
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    return (scipy.sparse.diags(degree) - affinity).tocsr()


def restrict(laplacian: scipy.sparse.csr_matrix, unknown: np.ndarray, known_alpha: np.ndarray):
    """``(L_UU, -L_UK alpha_K)`` for the boolean ``unknown`` mask."""
    u = unknown.ravel()
    rows = laplacian[u]
    matrix = rows[:, u].tocsr()
    matrix.sort_indices()
    rhs = -(rows[:, ~u] @ known_alpha.ravel()[~u])
    return matrix, np.asarray(rhs, dtype=np.float64)
