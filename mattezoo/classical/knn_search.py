"""Exact k-nearest-neighbour search for the nonlocal Laplacians (KNN matting).

The compiled ``mattezoo::knn_search`` builds a KD-tree (median splits on the
widest dimension) and answers the queries in parallel; without the extension
SciPy's ``cKDTree`` gives the same neighbours. Both are exact.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..ops._native import op_loaded

MAX_DIMS = 8


def knn_search(data: np.ndarray, k: int, queries: np.ndarray | None = None, *, leaf_size: int = 12):
    """The ``k`` nearest rows of ``data`` for each row of ``queries`` (default: ``data`` itself).

    :param data: ``N×D`` float array, ``1 ≤ D ≤ 8``.
    :param k: neighbours per query, ``1 ≤ k ≤ N``; a point of ``data`` is its own nearest neighbour.
    :return: ``(indices, sqdist)``, both ``M×k``, nearest first (ties in any order).
    """
    data = np.ascontiguousarray(data, dtype=np.float32)
    queries = data if queries is None else np.ascontiguousarray(queries, dtype=np.float32)
    if data.ndim != 2 or queries.ndim != 2 or data.shape[1] != queries.shape[1]:
        raise InputError(f"data and queries must be N×D and M×D with the same D, got {data.shape} and {queries.shape}")
    if not 1 <= data.shape[1] <= MAX_DIMS:
        raise InputError(f"feature dimension must be 1..{MAX_DIMS}, got {data.shape[1]}")
    if not np.isfinite(data).all() or not np.isfinite(queries).all():
        raise InputError("features contain NaN or infinite values")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= data.shape[0]:
        raise InputError(f"k must be an int in [1, {data.shape[0]}] (the number of points), got {k!r}")
    if op_loaded("knn_search"):
        data_t = torch.from_numpy(data)
        queries_t = data_t if queries is data else torch.from_numpy(queries)  # same tensor: the kernel's self-query path
        indices, sqdist = torch.ops.mattezoo.knn_search(data_t, queries_t, int(k), int(leaf_size))
        return indices.numpy(), sqdist.numpy()
    from scipy.spatial import cKDTree

    dist, indices = cKDTree(data).query(queries, k=int(k), workers=-1)
    dist, indices = dist.reshape(len(queries), -1), indices.reshape(len(queries), -1)
    return indices.astype(np.int64), (dist**2).astype(np.float32)
