"""KNN matting: Chen, Li, Tang, "KNN Matting", IEEE TPAMI 35(9), 2013.

Nonlocal matting: each pixel is tied to its K nearest neighbours in a feature
space of colour and position, wherever they are in the image. The affinity
``A`` (kernel value of each neighbour pair) is symmetrised, ``L = D − (A + Aᵀ)``,
and the unknown pixels solve ``L_UU alpha_U = -L_UK alpha_K`` with the known
pixels as hard constraints, by preconditioned CG. Neighbours come from an
exact KD-tree search (:func:`mattezoo.classical.knn_search`).

Parameters. The paper uses K = 10 neighbours, features
``(cos h, sin h, s, v, x, y)`` in HSV, the kernel ``1 − ‖X(i) − X(j)‖ / C``
and soft constraints with λ = 100. The defaults here follow the refined
variant that pymatting (which the issue compares against) ships: RGB colour
with two neighbour sets, 20 neighbours with the image coordinates (in [0,1])
weighted by 2.0 (mostly local) and 10 with weight 0.1 (nonlocal), and a
binary kernel (``kernel="soft"`` gives ``1 − mean |X(i) − X(j)|``). Hard
constraints are the λ → ∞ limit of the paper's soft ones.
"""

from __future__ import annotations

import numpy as np

from mattezoo import MethodSpec, PaperResult, hookimpl
from mattezoo.classical import as_float_image, knn_laplacian_system, knn_search, solve_cg, split_trimap
from mattezoo.classical.method import TrimapPropagationMethod
from mattezoo.errors import InputError, choices_hint

CITATION = "Chen, Li, Tang. KNN Matting. IEEE TPAMI 35(9), 2013."
KERNELS = ("binary", "soft")


def knn_features(image: np.ndarray, spatial_weight: float) -> np.ndarray:
    """``HW×5`` float32 features: RGB and the pixel coordinates (in [0,1]) times ``spatial_weight``."""
    height, width = image.shape[:2]
    features = np.empty((height, width, 5), np.float32)
    features[..., :3] = image
    features[..., 3] = spatial_weight * np.linspace(0, 1, width, dtype=np.float32)[None, :]
    features[..., 4] = spatial_weight * np.linspace(0, 1, height, dtype=np.float32)[:, None]
    return features.reshape(-1, 5)


def knn_neighbors(image: np.ndarray, n_neighbors=(20, 10), spatial_weights=(2.0, 0.1), kernel: str = "binary"):
    """Neighbour lists ``HW×K`` (K = sum of ``n_neighbors``) and their kernel weights (``None`` for binary)."""
    if kernel not in KERNELS:
        raise InputError(f"unknown kernel {kernel!r}. {choices_hint(str(kernel), list(KERNELS), 'kernels')}")
    n_neighbors, spatial_weights = tuple(n_neighbors), tuple(spatial_weights)
    if len(n_neighbors) != len(spatial_weights) or not n_neighbors:
        raise InputError(f"n_neighbors {n_neighbors} and spatial_weights {spatial_weights} must be non-empty and of equal length")
    n_pixels = image.shape[0] * image.shape[1]
    lists, weights = [], []
    for k, weight in zip(n_neighbors, spatial_weights):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n_pixels:
            raise InputError(f"each entry of n_neighbors must be an int in [1, {n_pixels - 1}], got {k!r}")
        features = knn_features(image, float(weight))
        # k + 1: a pixel finds itself first; the Laplacian ignores self pairs.
        indices, _ = knn_search(features, int(k) + 1)
        lists.append(indices)
        if kernel == "soft":
            diff = np.abs(features[:, None, :] - features[indices]).mean(axis=2)
            weights.append(1.0 - diff)
    neighbors = np.concatenate(lists, axis=1)
    return neighbors, (np.concatenate(weights, axis=1) if kernel == "soft" else None)


def estimate_alpha_knn(image, trimap, *, n_neighbors=(20, 10), spatial_weights=(2.0, 0.1), kernel: str = "binary",
                       preconditioner="ichol", rtol: float = 1e-7, maxiter: int = 10000) -> np.ndarray:
    """Alpha matte of ``image`` by KNN matting.

    :param image: ``H×W×3`` RGB, float in [0,1] or uint8.
    :param trimap: ``H×W``, uint8 0/128/255 or float 0 / (0,1) / 1.
    :param n_neighbors: neighbours per pixel in each feature space (paper: one set of 10).
    :param spatial_weights: weight of the pixel coordinates in each feature space.
    :param kernel: ``"binary"`` or ``"soft"`` (see the module docstring).
    :param preconditioner, rtol, maxiter: see :func:`mattezoo.classical.solve_cg`.
    :return: ``H×W`` float64 alpha in [0,1]; a trimap without unknown pixels is returned at once.
    """
    image = as_float_image(image)
    regions = split_trimap(trimap, image.shape[:2])
    known_alpha = regions.known_alpha()
    if not regions.unknown.any():
        return known_alpha
    neighbors, weights = knn_neighbors(image, n_neighbors, spatial_weights, kernel)
    system = knn_laplacian_system(neighbors, regions.unknown, known_alpha, weights)
    # KNN systems are better conditioned than closed-form ones: a sparser
    # factor (drop 1e-3) costs a few more CG iterations but factors much faster.
    options = {"drop_tolerance": 1e-3} if preconditioner == "ichol" else None
    x = solve_cg(system.matrix, system.rhs, preconditioner=preconditioner, rtol=rtol, maxiter=maxiter,
                 preconditioner_options=options)
    return np.clip(system.scatter(x, known_alpha), 0.0, 1.0)


class KnnMatting(TrimapPropagationMethod):
    """The ``knn`` method object: ``obj(image [B,3,H,W], trimap [B,1,H,W]) -> alpha [B,1,H,W]``."""

    def __init__(self, n_neighbors=(20, 10), spatial_weights=(2.0, 0.1), kernel: str = "binary", preconditioner: str = "ichol",
                 rtol: float = 1e-7):
        if kernel not in KERNELS:
            raise InputError(f"unknown kernel {kernel!r}. {choices_hint(str(kernel), list(KERNELS), 'kernels')}")
        self.n_neighbors, self.spatial_weights, self.kernel = tuple(n_neighbors), tuple(spatial_weights), kernel
        self.preconditioner, self.rtol = preconditioner, rtol

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        return estimate_alpha_knn(image, trimap, n_neighbors=self.n_neighbors, spatial_weights=self.spatial_weights,
                                  kernel=self.kernel, preconditioner=self.preconditioner, rtol=self.rtol)


@hookimpl
def mattezoo_register_methods():
    # P3M paper Table 1 ("KNN"), rows B (blurred) and N (normal) of P3M-500-P;
    # no training protocol applies to a classical method.
    return [
        MethodSpec(
            name="knn",
            family="classical",
            factory="mattezoo_methods.knn:KnnMatting",
            summary="KNN matting: nonlocal Laplacian over colour+position nearest neighbours (KD-tree), preconditioned CG",
            citation=CITATION,
            paper_results=(
                PaperResult("P3M Table 1", "P3M-500-P (blurred)", {"SAD": 15.378, "MSE": 0.0511, "MAD": 0.1087}),
                PaperResult("P3M Table 1", "P3M-500-P (normal)", {"SAD": 15.366, "MSE": 0.0506, "MAD": 0.1078}),
            ),
        )
    ]
