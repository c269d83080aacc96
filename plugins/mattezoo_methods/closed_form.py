"""Closed-form matting: Levin, Lischinski, Weiss, "A Closed-Form Solution to
Natural Image Matting", IEEE TPAMI 30(2), 2008.

Within each small window the colour-line model makes alpha an affine function
of the colour, which yields the quadratic cost ``alphaᵀ L alpha`` with the
matting Laplacian ``L`` (paper eq. 12). The trimap's known pixels are hard
constraints and the unknown ones solve ``L_UU alpha_U = -L_UK alpha_K``
(:mod:`mattezoo.classical.laplacian`) by preconditioned CG
(:mod:`mattezoo.classical.solver`).

Parameters and their defaults from the paper: windows of 3×3 pixels
(``radius=1``) and ``epsilon=1e-7``. The solver settings (``rtol``,
``preconditioner``) are ours.
"""

from __future__ import annotations

import numpy as np

from mattezoo import MethodSpec, PaperResult, hookimpl
from mattezoo.classical import as_float_image, cf_laplacian_system, solve_cg, split_trimap
from mattezoo.classical.method import TrimapPropagationMethod

CITATION = "Levin, Lischinski, Weiss. A Closed-Form Solution to Natural Image Matting. IEEE TPAMI 30(2), 2008."


def estimate_alpha_closed_form(image, trimap, *, epsilon: float = 1e-7, radius: int = 1, preconditioner="ichol",
                               rtol: float = 1e-7, maxiter: int = 10000) -> np.ndarray:
    """Alpha matte of ``image`` by closed-form matting.

    :param image: ``H×W×3`` RGB, float in [0,1] or uint8.
    :param trimap: ``H×W``, uint8 0/128/255 or float 0 / (0,1) / 1 for
        background / unknown / foreground.
    :param epsilon: colour-line regulariser ε (paper: 1e-7).
    :param radius: window radius; windows are ``(2r+1)²`` (paper: 1, i.e. 3×3).
    :param preconditioner: see :func:`mattezoo.classical.solve_cg`.
    :param rtol: relative residual at which CG stops.
    :return: ``H×W`` float64 alpha in [0,1]. A trimap without unknown pixels
        is returned as the matte straight away.
    """
    image = as_float_image(image)
    regions = split_trimap(trimap, image.shape[:2])
    known_alpha = regions.known_alpha()
    if not regions.unknown.any():
        return known_alpha
    system = cf_laplacian_system(image, regions.unknown, known_alpha, epsilon=epsilon, radius=radius)
    x = solve_cg(system.matrix, system.rhs, preconditioner=preconditioner, rtol=rtol, maxiter=maxiter)
    return np.clip(system.scatter(x, known_alpha), 0.0, 1.0)


class ClosedFormMatting(TrimapPropagationMethod):
    """The ``closed_form`` method object: ``obj(image [B,3,H,W], trimap [B,1,H,W]) -> alpha [B,1,H,W]``."""

    def __init__(self, epsilon: float = 1e-7, radius: int = 1, preconditioner: str = "ichol", rtol: float = 1e-7):
        self.epsilon, self.radius, self.preconditioner, self.rtol = epsilon, radius, preconditioner, rtol

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        return estimate_alpha_closed_form(image, trimap, epsilon=self.epsilon, radius=self.radius,
                                          preconditioner=self.preconditioner, rtol=self.rtol)


@hookimpl
def mattezoo_register_methods():
    # P3M paper Table 1 ("Closed"), trimap-based traditional methods on
    # P3M-500-P; rows B and N are the blurred and the normal test images.
    # The table has no training protocol for these methods, hence protocol=None.
    return [
        MethodSpec(
            name="closed_form",
            family="classical",
            factory="mattezoo_methods.closed_form:ClosedFormMatting",
            summary="Closed-form matting: matting Laplacian over 3×3 windows, solved with preconditioned CG",
            citation=CITATION,
            paper_results=(
                PaperResult("P3M Table 1", "P3M-500-P (blurred)", {"SAD": 9.5750, "MSE": 0.0214, "MAD": 0.0693}),
                PaperResult("P3M Table 1", "P3M-500-P (normal)", {"SAD": 9.4812, "MSE": 0.0210, "MAD": 0.0686}),
            ),
        )
    ]
