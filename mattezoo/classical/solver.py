"""Preconditioned conjugate gradients for sparse symmetric positive definite systems.

Every Laplacian-based matting method ends in ``L_UU x = b`` with a large,
sparse, SPD but badly conditioned ``L_UU`` (ε = 1e-7 in closed-form matting
makes flat windows nearly singular). Plain CG needs thousands of iterations
there and a dense solve is out of the question, so :func:`solve_cg` always
runs with a preconditioner:

``"ichol"`` (default)
    threshold incomplete Cholesky ``A ≈ L Lᵀ`` of the unit-diagonal scaled
    matrix (compiled ``mattezoo::ichol``, entries below ``drop_tolerance``,
    default 1e-4, dropped) in reverse Cuthill-McKee order. Where a pivot
    fails (the CF Laplacian is not an M-matrix) the diagonal is scaled by
    ``1 + shift`` for growing shifts. Without the extension, SciPy's
    incomplete LU (``spilu``) stands in.
``"amg"``
    one smoothed-aggregation algebraic multigrid V-cycle (pyamg, optional).
``"jacobi"``
    the diagonal; cheap and weak, for comparison.

``benchmarks/speed_classical.py --preconditioners`` measures them against
each other; threshold IC was fastest on the closed-form and KNN systems at
800×600 on our CPUs (zero fill-in IC(0) needed ~70× more CG iterations on the
closed-form system; see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
import torch

from ..errors import InputError, MattezooError, choices_hint
from ..ops._native import op_loaded

Preconditioner = Callable[[np.ndarray], np.ndarray]
PRECONDITIONERS = ("ichol", "amg", "jacobi")
ICHOL_SHIFTS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


class ConvergenceError(MattezooError, RuntimeError):
    """CG did not reach the tolerance within ``maxiter`` iterations, or broke down."""


@dataclass
class SolveInfo:
    """What :func:`solve_cg` did: iterations run and the final relative residual."""

    iterations: int = 0
    relative_residual: float = 0.0
    preconditioner: str = ""


def _as_csr(matrix) -> scipy.sparse.csr_matrix:
    if not scipy.sparse.issparse(matrix):
        raise InputError(f"matrix must be a scipy.sparse matrix, got {type(matrix).__name__} (dense solves are not supported)")
    matrix = scipy.sparse.csr_matrix(matrix, dtype=np.float64)
    if matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"matrix must be square, got {matrix.shape}")
    if not matrix.has_sorted_indices:
        matrix = matrix.copy()
        matrix.sort_indices()
    return matrix


def _torch_csr(matrix: scipy.sparse.csr_matrix):
    return (
        torch.from_numpy(matrix.indptr.astype(np.int64, copy=False)),
        torch.from_numpy(matrix.indices.astype(np.int64, copy=False)),
        torch.from_numpy(matrix.data),
    )


def matvec(matrix: scipy.sparse.csr_matrix) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> matrix @ x``, parallel over rows with the compiled op when it is loaded."""
    if not op_loaded("csr_matvec"):
        return matrix.dot
    indptr, indices, values = _torch_csr(matrix)
    return lambda x: torch.ops.mattezoo.csr_matvec(indptr, indices, values, torch.from_numpy(x)).numpy()


def ichol_preconditioner(matrix, *, drop_tolerance: float = 1e-4, shifts=ICHOL_SHIFTS, reorder: bool = True,
                         scale: bool = True, max_fill: float = 40.0) -> Preconditioner:
    """``r -> (L Lᵀ)⁻¹ r`` for a threshold incomplete Cholesky factor of ``matrix`` (SPD).

    :param drop_tolerance: entries of L with ``|L_ij| <= drop_tolerance`` are
        dropped (0 keeps everything: a complete Cholesky factorisation).
    :param shifts: relative diagonal shifts tried in turn when a pivot fails.
    :param reorder: factor in reverse Cuthill-McKee order, which shrinks the
        profile of the banded unknown regions of a trimap and with it the fill.
    :param scale: factor the unit-diagonal ``D^-1/2 A D^-1/2`` (drop
        tolerance relative to the diagonal) instead of ``A`` itself.
    :param max_fill: give up when L would hold more than ``max_fill × nnz(A)`` entries.
    """
    matrix = _as_csr(matrix)
    n = matrix.shape[0]
    diag = matrix.diagonal()
    if not (diag > 0).all():
        raise ConvergenceError("incomplete Cholesky needs a positive diagonal; the matrix is not positive definite")
    if not op_loaded("ichol"):
        # SciPy's threshold ILU: also a real incomplete factorisation, slower.
        ilu = scipy.sparse.linalg.spilu(matrix.tocsc(), drop_tol=drop_tolerance, fill_factor=10)
        return ilu.solve
    # Factor the unit-diagonal D^-1/2 A D^-1/2, so that one drop tolerance
    # means the same for every Laplacian's scale: M^-1 = D^-1/2 (L L^T)^-1 D^-1/2.
    scale = 1.0 / np.sqrt(diag) if scale else np.ones(n)
    perm = scipy.sparse.csgraph.reverse_cuthill_mckee(matrix, symmetric_mode=True).astype(np.int64) if reorder and n > 1 else None
    matrix = _scaled_permuted(matrix, scale, perm)
    indptr, indices, values = _torch_csr(matrix)
    max_nnz = int(max_fill * (matrix.nnz + n))
    for shift in shifts:
        l_ptr, l_idx, l_val, status = torch.ops.mattezoo.ichol(indptr, indices, values, float(drop_tolerance), float(shift), max_nnz)
        if status == -2:
            raise ConvergenceError(f"incomplete Cholesky needs more than {max_fill:g}×nnz(A) entries; raise drop_tolerance or max_fill")
        if status == -1:
            break
    else:
        raise ConvergenceError(
            f"incomplete Cholesky broke down at column {status} even with the diagonal scaled by {1 + shifts[-1]:g}; "
            "the matrix is probably not positive definite (use preconditioner='jacobi' to check)"
        )
    if perm is None:
        perm = np.arange(n)

    def solve(r: np.ndarray) -> np.ndarray:
        z = np.empty_like(r)
        z[perm] = torch.ops.mattezoo.ichol_solve(l_ptr, l_idx, l_val, torch.from_numpy((r * scale)[perm])).numpy()
        return z * scale

    return solve


def _scaled_permuted(matrix: scipy.sparse.csr_matrix, scale: np.ndarray, perm: np.ndarray | None) -> scipy.sparse.csr_matrix:
    """``P S A S Pᵀ`` for ``S = diag(scale)`` and the row order ``perm``, without SciPy's slower fancy indexing."""
    n = matrix.shape[0]
    indptr = matrix.indptr.astype(np.int64)
    counts = np.diff(indptr)
    data = matrix.data * np.repeat(scale, counts) * scale[matrix.indices]
    if perm is None:
        return scipy.sparse.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)
    inverse = np.empty(n, np.int64)
    inverse[perm] = np.arange(n)
    new_counts = counts[perm]
    new_indptr = np.concatenate([[0], np.cumsum(new_counts)])
    # Entry t of the new matrix comes from old position start(perm[row(t)]) + (t - new_start(row(t))).
    source = np.repeat(indptr[perm] - new_indptr[:-1], new_counts) + np.arange(new_indptr[-1])
    out = scipy.sparse.csr_matrix((data[source], inverse[matrix.indices[source]], new_indptr), shape=matrix.shape)
    out.sort_indices()
    return out


def jacobi_preconditioner(matrix) -> Preconditioner:
    """``r -> r / diag(matrix)``."""
    diag = _as_csr(matrix).diagonal()
    if not (diag > 0).all():
        raise InputError("Jacobi preconditioning needs a positive diagonal; the matrix is not positive definite")
    inv = 1.0 / diag
    return lambda r: r * inv


def amg_preconditioner(matrix) -> Preconditioner:
    """One smoothed-aggregation AMG V-cycle (needs ``pip install pyamg``)."""
    try:
        import pyamg
    except ImportError:
        raise MattezooError("preconditioner='amg' needs pyamg; install it with `pip install pyamg`") from None
    ml = pyamg.smoothed_aggregation_solver(_as_csr(matrix), max_coarse=500)
    return ml.aspreconditioner(cycle="V").matvec


_FACTORIES = {"ichol": ichol_preconditioner, "amg": amg_preconditioner, "jacobi": jacobi_preconditioner}


def make_preconditioner(matrix, kind: str = "ichol", **options) -> Preconditioner:
    """A preconditioner of ``kind`` (one of :data:`PRECONDITIONERS`) for ``matrix``;
    ``options`` go to its factory (e.g. ``drop_tolerance`` for ``"ichol"``)."""
    if kind not in _FACTORIES:
        raise InputError(f"unknown preconditioner {kind!r}. {choices_hint(str(kind), list(PRECONDITIONERS), 'preconditioners')}")
    try:
        return _FACTORIES[kind](matrix, **options)
    except TypeError as exc:
        raise InputError(f"invalid options {options} for the {kind!r} preconditioner: {exc}") from None


def solve_cg(matrix, rhs, *, preconditioner: str | Preconditioner = "ichol", x0=None, rtol: float = 1e-7,
             atol: float = 0.0, maxiter: int = 10000, info: SolveInfo | None = None,
             preconditioner_options: dict | None = None) -> np.ndarray:
    """Solve ``matrix @ x = rhs`` for a sparse SPD ``matrix`` with preconditioned CG.

    :param matrix: ``n×n`` scipy sparse matrix, symmetric positive definite.
    :param rhs: length-``n`` vector.
    :param preconditioner: a name from :data:`PRECONDITIONERS` or a callable
        ``r -> M⁻¹ r`` (M SPD).
    :param x0: start vector (default zeros).
    :param rtol, atol: stop when ``‖r‖ ≤ max(rtol·‖rhs‖, atol)``.
    :param maxiter: raise :class:`ConvergenceError` after this many iterations.
    :param info: a :class:`SolveInfo` to fill with iteration count and residual.
    :param preconditioner_options: keyword options for a named preconditioner,
        e.g. ``{"drop_tolerance": 1e-3}`` for ``"ichol"``.
    """
    matrix = _as_csr(matrix)
    n = matrix.shape[0]
    b = np.asarray(rhs, dtype=np.float64).ravel()
    if b.shape != (n,):
        raise InputError(f"rhs must have {n} entries to match the {n}×{n} matrix, got shape {np.shape(rhs)}")
    if not np.isfinite(b).all() or not np.isfinite(matrix.data).all():
        raise InputError("matrix and rhs must be finite (found NaN or infinity)")
    if not isinstance(maxiter, int) or maxiter < 1:
        raise InputError(f"maxiter must be a positive int, got {maxiter!r}")
    name = preconditioner if isinstance(preconditioner, str) else getattr(preconditioner, "__name__", "custom")
    info = info if info is not None else SolveInfo()
    info.preconditioner = name
    if isinstance(preconditioner, str):
        precondition = make_preconditioner(matrix, preconditioner, **(preconditioner_options or {}))
    else:
        precondition = preconditioner
    apply = matvec(matrix)

    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64).ravel()
    if x.shape != (n,):
        raise InputError(f"x0 must have {n} entries, got shape {np.shape(x0)}")
    norm_b = float(np.linalg.norm(b))
    tol = max(rtol * norm_b, atol)
    r = b - apply(x) if x0 is not None else b.copy()
    norm_r = float(np.linalg.norm(r))
    info.iterations, info.relative_residual = 0, norm_r / norm_b if norm_b else norm_r
    if norm_r <= tol:
        return x
    z = precondition(r)
    p = z.copy()
    rz = float(r @ z)
    for iteration in range(1, maxiter + 1):
        ap = apply(p)
        pap = float(p @ ap)
        if not pap > 0:
            raise ConvergenceError(f"CG broke down at iteration {iteration}: pᵀAp = {pap:.3g}; the matrix is not positive definite")
        step = rz / pap
        x += step * p
        r -= step * ap
        norm_r = float(np.linalg.norm(r))
        info.iterations, info.relative_residual = iteration, norm_r / norm_b if norm_b else norm_r
        if norm_r <= tol:
            return x
        z = precondition(r)
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    raise ConvergenceError(
        f"CG with the {name} preconditioner did not reach rtol={rtol:g} in {maxiter} iterations "
        f"(relative residual {info.relative_residual:.3g}); raise maxiter or try another preconditioner"
    )
