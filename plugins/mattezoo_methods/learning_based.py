"""Learning-based digital matting: Zheng, Kambhamettu, "Learning Based Digital
Matting", ICCV 2009.

Every window of ``m = (2r+1)²`` pixels fits a ridge regression from a pixel's
features ``x = (r, g, b, 1)`` to its alpha. The fit predicts the window's
alphas as ``F α_w`` with ``F = K (K + εI)⁻¹``, ``K = X Xᵀ`` the linear kernel of
the window's ``m×4`` feature matrix ``X`` (paper eqs. 6 and 11). Asking every
window to reproduce its own alphas gives the quadratic cost

    Σ_w ‖(I − F_w) α_w‖² = αᵀ L α,   L = Σ_w (I − F_w)ᵀ (I − F_w),

and the unknown pixels solve ``L_UU α_U = −L_UK α_K`` with the trimap's known
pixels as hard constraints, by preconditioned CG
(:func:`mattezoo.classical.solve_cg`), as closed-form matting does.

How the window matrix is computed. By Woodbury, ``F = X (XᵀX + εI)⁻¹ Xᵀ``,
so each window needs a 4×4 inverse instead of the paper's ``m×m`` solve, and
by blocks only a 3×3 one of the centred colours
(:func:`lbdm_window_laplacians`). ``I − F`` is then almost exactly
closed-form matting's window Laplacian (only the bias is penalised too);
learning-based matting uses its square, whose eigenvalues ``(ε/(g+ε))²``
differ from ``ε/(g+ε)`` only where the window's colour spread ``g`` is
comparable to ε, i.e. in near-flat windows.
Only windows that contain an unknown pixel are built: the others touch only
known-known entries, which the constrained system never reads.

Parameters and defaults. The paper's code uses 3×3 windows (``radius=1``),
the ridge parameter λ = 1e-7 (``epsilon`` here, the name pymatting uses) and
the linear kernel; its nonlinear (Gaussian) kernel variant is not offered
(pymatting notes it does not help either). Differences from the authors'
code and from pymatting's ``estimate_alpha_lbdm``:

- constraints: the paper adds ``c·C`` with c = 800 and pymatting adds λ = 100
  times the known-pixel indicator (soft constraints). Hard constraints are
  the c → ∞ limit; on the test composites the mattes differ from pymatting's
  by at most 1.6e-2 per pixel (mean <= 6e-4 over the unknown pixels), and
  our Laplacian in pymatting's soft system reproduces its matte (see the tests).
- the regulariser: the authors' code zeroes the last diagonal entry of
  ``εI`` in the ``m×m`` kernel system (which singles out the window's last
  pixel); like pymatting we regularise all ``m`` entries alike.
- windows: all windows lying inside the image, as in pymatting; the authors'
  code skips windows whose pixels are all known, which changes nothing
  under hard constraints.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from mattezoo import MethodSpec, PaperResult, hookimpl
from mattezoo.classical import LinearSystem, as_float_image, solve_cg, split_trimap
from mattezoo.classical.method import TrimapPropagationMethod
from mattezoo.errors import InputError

CITATION = "Zheng, Kambhamettu. Learning Based Digital Matting. ICCV 2009, pp. 889-896."

#: Window-matrix entries (``n·m²``) built at once: bounds each ``n×m×m``
#: temporary to ~32 MB whatever the radius.
CHUNK_ENTRIES = 1 << 22


def lbdm_window_laplacians(colours: np.ndarray, epsilon: float) -> np.ndarray:
    """``(I − F)ᵀ(I − F)`` for each window: ``n×m×m`` from ``n×m×3`` window colours.

    ``F = K (K + εI)⁻¹`` with ``K = X Xᵀ`` and ``X = [colours, 1]``. By
    Woodbury ``F = X (XᵀX + εI)⁻¹ Xᵀ``, and inverting the 4×4 ``XᵀX + εI`` by
    blocks (its Schur complement on the bias entry, ``d = m + ε``) gives

        F_pq = 1/d + y_pᵀ T⁻¹ y_q,   y_p = c_p − μ,   μ = Σ c_p / d,
        T = Σ y_p y_pᵀ + ε (I + μ μᵀ),

    i.e. closed-form matting's affinity with the bias penalised too. Working
    on centred colours keeps flat windows accurate to ~1e-15 (the uncentred
    4×4 inverse loses ~6 digits at ε = 1e-7). ``I − F`` is symmetric, so the
    result is its square.
    """
    n, m, _ = colours.shape
    d = m + epsilon
    mean = colours.sum(axis=1) / d
    centred = colours - mean[:, None, :]
    t = centred.transpose(0, 2, 1) @ centred
    t += epsilon * (np.eye(3) + mean[:, :, None] * mean[:, None, :])
    # Symmetric 3×3 inverse by cofactors: elementwise over all windows at once.
    a, b, c, e, f, i = t[:, 0, 0], t[:, 0, 1], t[:, 0, 2], t[:, 1, 1], t[:, 1, 2], t[:, 2, 2]
    c00, c01, c02 = e * i - f * f, c * f - b * i, b * f - c * e
    c11, c12, c22 = a * i - c * c, b * c - a * f, a * e - b * b
    det = a * c00 + b * c01 + c * c02
    inverse = np.stack([c00, c01, c02, c01, c11, c12, c02, c12, c22], axis=1).reshape(n, 3, 3) / det[:, None, None]
    residual = np.eye(m) - 1.0 / d - (centred @ inverse) @ centred.transpose(0, 2, 1)
    return residual @ residual


def _check_options(image: np.ndarray, epsilon, radius) -> None:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise InputError(f"radius must be an int >= 1, got {radius!r}")
    is_number = isinstance(epsilon, (int, float, np.integer, np.floating)) and not isinstance(epsilon, bool)
    if not (is_number and 0 < epsilon < np.inf):
        raise InputError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    height, width = image.shape[:2]
    if min(height, width) < 2 * radius + 1:
        raise InputError(f"image {height}×{width} is smaller than one {2 * radius + 1}×{2 * radius + 1} window (radius={radius})")


def lbdm_laplacian_system(image: np.ndarray, unknown: np.ndarray, known_alpha: np.ndarray, *, epsilon: float = 1e-7,
                          radius: int = 1) -> LinearSystem:
    """The learning-based matting system ``L_UU α_U = −L_UK α_K`` over the unknown pixels.

    :param image: ``H×W×3`` float RGB in [0,1].
    :param unknown: ``H×W`` bool, the pixels to solve for.
    :param known_alpha: ``H×W`` float, the fixed alpha of the other pixels.
    :param epsilon: ridge regulariser λ of the local regressions (paper: 1e-7).
    :param radius: window radius r, windows are ``(2r+1)×(2r+1)`` (paper: 1).

    Assembly: pixel ``p`` interacts only with pixels ``q = p + (dy, dx)``,
    ``|dy|, |dx| <= 2r``, so the unknown rows are gathered as an ``n_U×K`` band
    (``K = (4r+1)²`` offsets) by one ``bincount`` per chunk of windows, then
    split into the unknown columns (the matrix, already in CSR order) and the
    known ones (the right-hand side).
    """
    image = np.ascontiguousarray(image, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must have shape H×W×3 (RGB), got {image.shape}")
    _check_options(image, epsilon, radius)
    height, width = image.shape[:2]
    unknown = np.asarray(unknown, dtype=bool)
    known_alpha = np.asarray(known_alpha, dtype=np.float64)
    if unknown.shape != (height, width) or known_alpha.shape != (height, width):
        raise InputError(f"unknown {unknown.shape} and known_alpha {known_alpha.shape} must both be {(height, width)}")

    size = 2 * radius + 1
    span = 4 * radius + 1  # offsets -2r..2r per axis
    n_pixels = height * width
    flat_unknown = unknown.ravel()
    n_unknown = int(flat_unknown.sum())
    # Band row of each pixel; n_unknown marks the known ones.
    row_of = np.full(n_pixels, n_unknown, np.int64)
    row_of[flat_unknown] = np.arange(n_unknown)

    # Windows (by top-left pixel) that contain at least one unknown pixel.
    rows_touched = np.logical_or.reduce([unknown[k:height - size + 1 + k] for k in range(size)])
    touched = np.logical_or.reduce([rows_touched[:, k:width - size + 1 + k] for k in range(size)])
    wy, wx = np.nonzero(touched)
    corner = wy * width + wx
    dy, dx = np.divmod(np.arange(size * size), size)
    in_window = dy * width + dx  # linear offset of each window position from the corner
    # Band column of the pair (a, b) of window positions: the offset b − a.
    pair_offset = (dy[None, :] - dy[:, None] + 2 * radius) * span + (dx[None, :] - dx[:, None] + 2 * radius)

    offsets = span * span
    band = np.zeros((n_unknown, offsets))
    flat_image = image.reshape(-1, 3)
    chunk = max(1, CHUNK_ENTRIES // (size * size) ** 2)
    for start in range(0, corner.size, chunk):
        pixels = corner[start:start + chunk, None] + in_window[None, :]  # n×m
        local = lbdm_window_laplacians(flat_image[pixels], float(epsilon))  # n×m×m, rows a, columns b
        # Windows run in raster order, so a chunk's unknown rows form a short
        # range [lo, hi]; known rows go to one spare row past it, then dropped.
        rows = row_of[pixels]
        lo, hi = rows.min(), rows[rows < n_unknown].max()
        rows = np.where(rows < n_unknown, rows - lo, hi - lo + 1)
        target = (rows * offsets)[:, :, None] + pair_offset[None, :, :]
        sums = np.bincount(target.ravel(), weights=local.ravel(), minlength=(hi - lo + 2) * offsets)
        band[lo:hi + 1] += sums[:(hi - lo + 1) * offsets].reshape(-1, offsets)

    # Column pixel of each band entry, and whether it lies inside the image.
    ys, xs = np.divmod(np.flatnonzero(flat_unknown), width)
    ody, odx = np.divmod(np.arange(span * span), span)
    ody, odx = ody - 2 * radius, odx - 2 * radius
    qy, qx = ys[:, None] + ody[None, :], xs[:, None] + odx[None, :]
    inside = (qy >= 0) & (qy < height) & (qx >= 0) & (qx < width)
    q = np.where(inside, qy * width + qx, 0)
    q_unknown = inside & flat_unknown[q]
    q_known = inside & ~flat_unknown[q]
    rhs = -(band * np.where(q_known, known_alpha.ravel()[q], 0.0)).sum(axis=1)
    # Offsets ordered by (dy, dx) give increasing columns for in-image pixels: CSR order.
    indptr = np.concatenate([[0], np.cumsum(q_unknown.sum(axis=1))])
    matrix = scipy.sparse.csr_matrix((band[q_unknown], row_of[q[q_unknown]], indptr), shape=(n_unknown, n_unknown))
    return LinearSystem(matrix, rhs, unknown)


def lbdm_laplacian(image: np.ndarray, *, epsilon: float = 1e-7, radius: int = 1) -> scipy.sparse.csr_matrix:
    """The full ``HW×HW`` learning-based matting Laplacian (every pixel unknown)."""
    shape = np.shape(image)[:2]
    return lbdm_laplacian_system(image, np.ones(shape, bool), np.zeros(shape), epsilon=epsilon, radius=radius).matrix


def estimate_alpha_learning_based(image, trimap, *, epsilon: float = 1e-7, radius: int = 1, preconditioner="ichol",
                                  rtol: float = 1e-7, maxiter: int = 10000) -> np.ndarray:
    """Alpha matte of ``image`` by learning-based digital matting.

    :param image: ``H×W×3`` RGB, float in [0,1] or uint8.
    :param trimap: ``H×W``, uint8 0/128/255 or float 0 / (0,1) / 1 for
        background / unknown / foreground.
    :param epsilon: ridge regulariser λ of the local linear models (paper: 1e-7).
    :param radius: window radius; windows are ``(2r+1)²`` (paper: 1, i.e. 3×3).
    :param preconditioner, rtol, maxiter: see :func:`mattezoo.classical.solve_cg`.
    :return: ``H×W`` float64 alpha in [0,1]; a trimap without unknown pixels
        is returned as the matte straight away.
    """
    image = as_float_image(image)
    regions = split_trimap(trimap, image.shape[:2])
    known_alpha = regions.known_alpha()
    _check_options(image, epsilon, radius)
    if not regions.unknown.any():
        return known_alpha
    system = lbdm_laplacian_system(image, regions.unknown, known_alpha, epsilon=epsilon, radius=radius)
    x = solve_cg(system.matrix, system.rhs, preconditioner=preconditioner, rtol=rtol, maxiter=maxiter)
    return np.clip(system.scatter(x, known_alpha), 0.0, 1.0)


class LearningBasedMatting(TrimapPropagationMethod):
    """The ``learning_based`` method object: ``obj(image [B,3,H,W], trimap [B,1,H,W]) -> alpha [B,1,H,W]``."""

    def __init__(self, epsilon: float = 1e-7, radius: int = 1, preconditioner: str = "ichol", rtol: float = 1e-7):
        self.epsilon, self.radius, self.preconditioner, self.rtol = epsilon, radius, preconditioner, rtol

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        return estimate_alpha_learning_based(image, trimap, epsilon=self.epsilon, radius=self.radius,
                                             preconditioner=self.preconditioner, rtol=self.rtol)


@hookimpl
def mattezoo_register_methods():
    # P3M paper Table 1 ("Learning"), trimap-based traditional methods on
    # P3M-500-P, rows B (blurred) and N (normal); no training protocol applies.
    return [
        MethodSpec(
            name="learning_based",
            family="classical",
            factory="mattezoo_methods.learning_based:LearningBasedMatting",
            summary="Learning-based matting: local ridge regressions over 3×3 windows give a Laplacian, solved with preconditioned CG",
            citation=CITATION,
            paper_results=(
                PaperResult("P3M Table 1", "P3M-500-P (blurred)", {"SAD": 10.248, "MSE": 0.0238, "MAD": 0.0737}),
                PaperResult("P3M Table 1", "P3M-500-P (normal)", {"SAD": 10.151, "MSE": 0.0236, "MAD": 0.0729}),
            ),
        )
    ]
