"""Preconditioned conjugate gradients for sparse symmetric positive definite systems.

Every Laplacian-based matting method ends in ``L_UU x = b`` with a large,
sparse, SPD but badly conditioned ``L_UU`` (ε = 1e-7 in closed-form matting
makes flat windows nearly singular). Plain CG needs thousands of iterations
there and a dense solve is out of the question, so :func:`solve_cg` always
runs with a preconditioner:

``"ichol"`` (default)
    threshold incomplete Cholesky ``A ≈ L Lᵀ`` of the unit-diagonal scaled
    matrix (compiled ``mattezoo::ichol``, entries below ``drop_tolerance``,
    default 1e-4, dropped) in reverse Cuthill-McKee order, split at small
    separators into parts that are factored in parallel (one-level nested
    dissection, :func:`thread_parts`). Where a pivot fails (the CF Laplacian
    is not an M-matrix) the diagonal is scaled by ``1 + shift`` for growing
    shifts. The whole CG loop then runs compiled (``mattezoo::ichol_pcg``).
    Without the extension, SciPy's incomplete LU (``spilu``) stands in.
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
                         scale: bool = True, max_fill: float = 40.0, parts: int | None = None) -> Preconditioner:
    """``r -> (L Lᵀ)⁻¹ r`` for a threshold incomplete Cholesky factor of ``matrix`` (SPD).

    With the extension this is an :class:`IncompleteCholesky` (see there for
    the options); without it SciPy's threshold ILU (``spilu``) stands in.
    """
    matrix = _as_csr(matrix)
    if not (matrix.diagonal() > 0).all():
        raise ConvergenceError("incomplete Cholesky needs a positive diagonal; the matrix is not positive definite")
    if op_loaded("ichol_pcg"):
        return IncompleteCholesky(matrix, drop_tolerance=drop_tolerance, shifts=shifts, reorder=reorder, scale=scale,
                                  max_fill=max_fill, parts=parts)
    # SciPy's threshold ILU: also a real incomplete factorisation, slower.
    ilu = scipy.sparse.linalg.spilu(matrix.tocsc(), drop_tol=drop_tolerance, fill_factor=10)
    return ilu.solve


class IncompleteCholesky:
    """Threshold incomplete Cholesky ``P S A S Pᵀ ≈ L Lᵀ`` of an SPD ``matrix`` (compiled ``mattezoo::ichol``).

    Calling it applies the preconditioner, ``r -> S Pᵀ (L Lᵀ)⁻¹ P S r``;
    :meth:`solve` runs the whole preconditioned CG on ``matrix`` in one
    compiled call (``mattezoo::ichol_pcg``), which is what :func:`solve_cg`
    does for ``preconditioner="ichol"``. Build it once to solve for several
    right-hand sides.

    :param drop_tolerance: entries of L with ``|L_ij| <= drop_tolerance`` are
        dropped (0 keeps everything: a complete Cholesky factorisation).
    :param shifts: relative diagonal shifts tried in turn when a pivot fails
        (the closed-form Laplacian is not an M-matrix).
    :param reorder: factor in reverse Cuthill-McKee order ``P``, which shrinks
        the profile of the banded unknown regions of a trimap and with it the fill.
    :param scale: factor the unit-diagonal ``S A S``, ``S = D^-1/2`` (the drop
        tolerance is then relative to the diagonal) instead of ``A`` itself.
    :param max_fill: give up when L would hold more than ``max_fill × nnz(A)`` entries.
    :param parts: how many independent parts to factor and solve in parallel
        (one-level nested dissection, see :func:`thread_parts`); ``None``: as
        many as torch has threads, for systems of at least
        :data:`MIN_PARALLEL_ROWS` rows.
    """

    def __init__(self, matrix, *, drop_tolerance: float = 1e-4, shifts=ICHOL_SHIFTS, reorder: bool = True,
                 scale: bool = True, max_fill: float = 40.0, parts: int | None = None):
        if not op_loaded("ichol_pcg"):
            raise MattezooError("IncompleteCholesky needs the compiled extension (mattezoo._C)")
        matrix = _as_csr(matrix)
        n = matrix.shape[0]
        diag = matrix.diagonal()
        if not (diag > 0).all():
            raise ConvergenceError("incomplete Cholesky needs a positive diagonal; the matrix is not positive definite")
        if parts is None:
            parts = torch.get_num_threads() if n >= MIN_PARALLEL_ROWS else 1
        if isinstance(parts, bool) or not isinstance(parts, (int, np.integer)) or parts < 1:
            raise InputError(f"parts must be None or an int >= 1, got {parts!r}")
        self.matrix = matrix
        self.scale = 1.0 / np.sqrt(diag) if scale else np.ones(n)
        perm = scipy.sparse.csgraph.reverse_cuthill_mckee(matrix, symmetric_mode=True).astype(np.int64) if reorder and n > 1 else np.arange(n)
        order, self.parts = thread_parts(matrix, perm, int(parts))
        self.perm = perm[order]
        a_ptr, a_idx, a_val = _torch_csr(matrix)
        self._system = torch.ops.mattezoo.csr_permute_symmetric(a_ptr, a_idx, a_val, torch.from_numpy(self.perm),
                                                                torch.from_numpy(self.scale))
        max_nnz = int(max_fill * (matrix.nnz + n))
        for shift in shifts:
            *factor, status = torch.ops.mattezoo.ichol(*self._system, float(drop_tolerance), float(shift), max_nnz, self.parts)
            if status == -2:
                raise ConvergenceError(f"incomplete Cholesky needs more than {max_fill:g}×nnz(A) entries; raise drop_tolerance or max_fill")
            if status == -1:
                break
        else:
            raise ConvergenceError(
                f"incomplete Cholesky broke down at column {status} even with the diagonal scaled by {1 + shifts[-1]:g}; "
                "the matrix is probably not positive definite (use preconditioner='jacobi' to check)"
            )
        self.shift = shift
        self._factor = tuple(factor)

    @property
    def nnz(self) -> int:
        """Entries of the factor L."""
        return int(self._factor[1].numel())

    def __call__(self, r: np.ndarray) -> np.ndarray:
        z = np.empty(len(self.perm))
        z[self.perm] = torch.ops.mattezoo.ichol_solve(*self._factor, self.parts, torch.from_numpy((r * self.scale)[self.perm])).numpy()
        return z * self.scale

    def solve(self, rhs, *, x0=None, rtol: float = 1e-7, atol: float = 0.0, maxiter: int = 10000,
              info: SolveInfo | None = None) -> np.ndarray:
        """Solve ``matrix @ x = rhs`` by CG preconditioned with this factor (arguments as :func:`solve_cg`)."""
        n = self.matrix.shape[0]
        b = _checked_vector(rhs, n, "rhs")
        x0 = None if x0 is None else _checked_vector(x0, n, "x0")
        _check_maxiter(maxiter)
        info = info if info is not None else SolveInfo()
        info.preconditioner = "ichol"
        norm_b = float(np.linalg.norm(b))
        # CG runs on the scaled, reordered system (P S A S Pᵀ) y = P S b with
        # x = S Pᵀ y; its residual is P S r, so weights 1/S (reordered) give
        # back the norm of the residual r of the original system.
        scaled_b = torch.from_numpy((b * self.scale)[self.perm])
        start = torch.from_numpy((x0 / self.scale)[self.perm]) if x0 is not None else torch.empty(0, dtype=torch.float64)
        weights = torch.from_numpy(1.0 / self.scale[self.perm])
        y, iterations, norm_r, status = torch.ops.mattezoo.ichol_pcg(
            *self._system, *self._factor, self.parts, scaled_b, start, weights, max(rtol * norm_b, atol), maxiter
        )
        info.iterations, info.relative_residual = iterations, norm_r / norm_b if norm_b else norm_r
        if status == 2:
            raise ConvergenceError(f"CG broke down at iteration {iterations}: pᵀAp <= 0; the matrix is not positive definite")
        if status == 1:
            raise ConvergenceError(
                f"CG with the ichol preconditioner did not reach rtol={rtol:g} in {maxiter} iterations "
                f"(relative residual {info.relative_residual:.3g}); raise maxiter or try another preconditioner"
            )
        x = np.empty(n)
        x[self.perm] = y.numpy()
        return x * self.scale


#: Below this many rows :class:`IncompleteCholesky` factors serially by default.
MIN_PARALLEL_ROWS = 8192
#: The separators of :func:`thread_parts` may hold at most this share of the rows (and at most 4096).
MAX_SEPARATOR_SHARE = 0.05


def thread_parts(matrix: scipy.sparse.csr_matrix, perm: np.ndarray, n_parts: int) -> tuple[np.ndarray, list[int]]:
    """Split the rows of ``matrix`` in the order ``perm`` into ``n_parts`` independent parts and a separator.

    In a banded order such as reverse Cuthill-McKee, the rows ``[m, e)`` right
    after a cut at ``m``, up to the furthest column ``e - 1`` any earlier row
    reaches, separate the rows before ``m`` from the rows from ``e`` on. Cuts
    go where that separator is smallest near equal shares of the nonzeros;
    moving the separators to the end gives parts whose incomplete Cholesky
    factors and triangular solves are independent (one-level nested
    dissection). Returns the positions (into ``perm``) in their new order and
    the part bounds ``[0, e1, ..., ep]`` for ``mattezoo::ichol``; one part
    (``[0, n]``) when ``n_parts`` is 1 or no small separators exist.
    """
    n = matrix.shape[0]
    serial = (np.arange(n), [0, n])
    if n_parts <= 1 or n < 4 * n_parts:
        return serial
    inverse = np.empty(n, np.int64)
    inverse[perm] = np.arange(n)
    counts = np.diff(matrix.indptr)
    # Furthest column (in the new order) of each row, in the new order.
    furthest = np.maximum.reduceat(inverse[matrix.indices], matrix.indptr[:-1])[perm]
    reach = np.maximum.accumulate(furthest)
    cumulative = np.cumsum(counts[perm])
    half_window = max(1, n // (5 * n_parts))
    separators, lowest = [], 1
    for q in range(1, n_parts):
        target = int(np.searchsorted(cumulative, q * cumulative[-1] / n_parts))
        cuts = np.arange(max(lowest, target - half_window), min(n - 1, target + half_window) + 1)
        if not len(cuts):
            return serial
        sizes = reach[cuts - 1] + 1 - cuts
        cut = int(cuts[np.argmin(sizes)])
        separators.append((cut, int(reach[cut - 1]) + 1))
        lowest = separators[-1][1]
    if sum(end - cut for cut, end in separators) > min(MAX_SEPARATOR_SHARE * n, 4096):
        return serial
    pieces, bounds, begin = [], [0], 0
    for cut, end in separators:
        pieces.append(np.arange(begin, cut))
        bounds.append(bounds[-1] + cut - begin)
        begin = end
    pieces.append(np.arange(begin, n))
    bounds.append(bounds[-1] + n - begin)
    pieces += [np.arange(cut, end) for cut, end in separators]
    return np.concatenate(pieces), bounds


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


def _checked_vector(values, n: int, name: str) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float64).ravel()
    if vector.shape != (n,):
        raise InputError(f"{name} must have {n} entries to match the {n}×{n} matrix, got shape {np.shape(values)}")
    if not np.isfinite(vector).all():
        raise InputError(f"{name} must be finite (found NaN or infinity)")
    return vector


def _check_maxiter(maxiter) -> None:
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise InputError(f"maxiter must be a positive int, got {maxiter!r}")


def _same_matrix(a: scipy.sparse.csr_matrix, b: scipy.sparse.csr_matrix) -> bool:
    return a is b or (a.shape == b.shape and a.nnz == b.nnz and np.array_equal(a.indptr, b.indptr)
                      and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


def solve_cg(matrix, rhs, *, preconditioner: str | Preconditioner = "ichol", x0=None, rtol: float = 1e-7,
             atol: float = 0.0, maxiter: int = 10000, info: SolveInfo | None = None,
             preconditioner_options: dict | None = None) -> np.ndarray:
    """Solve ``matrix @ x = rhs`` for a sparse SPD ``matrix`` with preconditioned CG.

    :param matrix: ``n×n`` scipy sparse matrix, symmetric positive definite.
    :param rhs: length-``n`` vector.
    :param preconditioner: a name from :data:`PRECONDITIONERS` or a callable
        ``r -> M⁻¹ r`` (M SPD). With the extension, ``"ichol"`` (or an
        :class:`IncompleteCholesky` of this matrix) runs the whole CG compiled.
    :param x0: start vector (default zeros).
    :param rtol, atol: stop when ``‖r‖ ≤ max(rtol·‖rhs‖, atol)``.
    :param maxiter: raise :class:`ConvergenceError` after this many iterations.
    :param info: a :class:`SolveInfo` to fill with iteration count and residual.
    :param preconditioner_options: keyword options for a named preconditioner,
        e.g. ``{"drop_tolerance": 1e-3}`` for ``"ichol"``.
    """
    matrix = _as_csr(matrix)
    n = matrix.shape[0]
    b = _checked_vector(rhs, n, "rhs")
    if not np.isfinite(matrix.data).all():
        raise InputError("matrix must be finite (found NaN or infinity)")
    _check_maxiter(maxiter)
    if x0 is not None:
        x0 = _checked_vector(x0, n, "x0")
    name = preconditioner if isinstance(preconditioner, str) else getattr(preconditioner, "__name__", type(preconditioner).__name__)
    info = info if info is not None else SolveInfo()
    info.preconditioner = name
    if isinstance(preconditioner, str):
        precondition = make_preconditioner(matrix, preconditioner, **(preconditioner_options or {}))
    else:
        precondition = preconditioner
    if isinstance(precondition, IncompleteCholesky) and _same_matrix(precondition.matrix, matrix):
        return precondition.solve(b, x0=x0, rtol=rtol, atol=atol, maxiter=maxiter, info=info)
    apply = matvec(matrix)

    x = np.zeros(n) if x0 is None else x0.copy()
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
