"""The classical machinery: Laplacians against SciPy references, KD-tree search
against brute force, and preconditioned CG against a sparse direct solve."""

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg

from composites import make_composite
from mattezoo.classical import (
    ConvergenceError,
    SolveInfo,
    cf_laplacian,
    cf_laplacian_system,
    knn_laplacian_system,
    knn_search,
    make_preconditioner,
    solve_cg,
    split_trimap,
)
from mattezoo.classical import _laplacian_reference as reference
from mattezoo.classical import laplacian as laplacian_module
from mattezoo.classical import solver as solver_module
from mattezoo.errors import InputError
from mattezoo.extension import has_ops

needs_ext = pytest.mark.skipif(not has_ops(), reason="compiled ops not loaded")


def poisson_2d(n: int, seed: int = 0) -> scipy.sparse.csr_matrix:
    """A 5-point Laplacian plus a random positive diagonal: sparse SPD."""
    rng = np.random.default_rng(seed)
    one_d = scipy.sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = scipy.sparse.identity(n)
    lap = scipy.sparse.kron(one_d, eye) + scipy.sparse.kron(eye, one_d)
    return (lap + scipy.sparse.diags(rng.uniform(1e-3, 1e-1, n * n))).tocsr()


@pytest.fixture(scope="module")
def small_composite():
    return make_composite(40, 52, seed=3)


# ----------------------------------------------------------------- Laplacians


@needs_ext
def test_cf_system_matches_reference(small_composite):
    c = small_composite
    regions = split_trimap(c.trimap, c.trimap.shape)
    system = cf_laplacian_system(c.image, regions.unknown, regions.known_alpha(), epsilon=1e-5)
    full = reference.cf_laplacian(c.image, 1e-5, 1)
    matrix, rhs = reference.restrict(full, regions.unknown, regions.known_alpha())
    assert system.matrix.shape == matrix.shape
    np.testing.assert_allclose(system.matrix.toarray(), matrix.toarray(), rtol=1e-9, atol=1e-7 * abs(matrix).max())
    np.testing.assert_allclose(system.rhs, rhs, rtol=1e-9, atol=1e-7 * abs(rhs).max())


@needs_ext
@pytest.mark.parametrize("radius", [1, 2])
def test_full_cf_laplacian_is_symmetric_with_constant_nullspace(radius):
    image = make_composite(20, 24, seed=1).image
    lap = cf_laplacian(image, epsilon=1e-4, radius=radius)
    ref = reference.cf_laplacian(image, 1e-4, radius)
    np.testing.assert_allclose(lap.toarray(), ref.toarray(), rtol=1e-9, atol=1e-9 * abs(ref).max())
    assert abs(lap - lap.T).max() < 1e-9 * abs(lap).max()
    # Each window's affine model reproduces constants: L 1 = 0.
    assert np.abs(lap @ np.ones(lap.shape[0])).max() < 1e-8 * abs(lap).max()


@needs_ext
@pytest.mark.parametrize("weighted", [False, True])
def test_knn_system_matches_reference(weighted):
    rng = np.random.default_rng(0)
    height, width, k = 12, 15, 6
    n = height * width
    neighbors = rng.integers(0, n, size=(n, k))
    neighbors[:, 0] = np.arange(n)  # self pairs must be ignored
    weights = rng.uniform(0.2, 1.0, size=(n, k)) if weighted else None
    unknown = rng.uniform(size=(height, width)) < 0.5
    known_alpha = (rng.uniform(size=(height, width)) < 0.5).astype(float)
    system = knn_laplacian_system(neighbors, unknown, known_alpha, weights)
    matrix, rhs = reference.restrict(reference.knn_laplacian(neighbors, weights), unknown, known_alpha)
    np.testing.assert_allclose(system.matrix.toarray(), matrix.toarray(), atol=1e-12)
    np.testing.assert_allclose(system.rhs, rhs, atol=1e-12)


def test_laplacian_fallback_without_extension(small_composite, monkeypatch):
    """MATTEZOO_DISABLE_EXT's path (the SciPy references) builds the same system."""
    c = small_composite
    regions = split_trimap(c.trimap, c.trimap.shape)
    native = cf_laplacian_system(c.image, regions.unknown, regions.known_alpha())
    monkeypatch.setattr(laplacian_module, "op_loaded", lambda name: False)
    fallback = cf_laplacian_system(c.image, regions.unknown, regions.known_alpha())
    assert abs(native.matrix - fallback.matrix).max() <= 1e-7 * abs(fallback.matrix).max()


def test_laplacian_input_errors(small_composite):
    c = small_composite
    mask = np.ones(c.trimap.shape, bool)
    with pytest.raises(InputError, match="radius"):
        cf_laplacian_system(c.image, mask, mask * 0.0, radius=0)
    with pytest.raises(InputError, match="smaller than one"):
        cf_laplacian_system(c.image[:2, :2], mask[:2, :2], mask[:2, :2] * 0.0)
    with pytest.raises(InputError, match="must both be"):
        cf_laplacian_system(c.image, mask[:-1], mask * 0.0)
    with pytest.raises(InputError, match="neighbor indices"):
        knn_laplacian_system(np.full((mask.size, 2), mask.size), mask, mask * 0.0)


# ----------------------------------------------------------------- KD-tree


@pytest.mark.parametrize("dims", [2, 5, 8])
def test_knn_search_matches_brute_force(dims):
    rng = np.random.default_rng(dims)
    data = rng.uniform(size=(700, dims)).astype(np.float32)
    queries = rng.uniform(size=(90, dims)).astype(np.float32)
    k = 9
    indices, sqdist = knn_search(data, k, queries)
    brute = ((queries[:, None, :].astype(np.float64) - data[None, :, :]) ** 2).sum(axis=2)
    expected = np.sort(brute, axis=1)[:, :k]
    np.testing.assert_allclose(sqdist, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(brute, indices, axis=1), expected, rtol=1e-4, atol=1e-6)
    assert all(len(set(row)) == k for row in indices.tolist())


def test_knn_search_self_queries_and_duplicates():
    data = np.repeat(np.arange(30, dtype=np.float32)[:, None], 2, axis=1)
    data = np.concatenate([data, data])  # every point twice
    indices, sqdist = knn_search(data, 2)
    assert (sqdist == 0).all()
    assert ((indices % 30) == (np.arange(60) % 30)[:, None]).all()


@pytest.mark.parametrize("bad, match", [(0, "k must be"), (10_000, "k must be"), (True, "k must be")])
def test_knn_search_rejects_bad_k(bad, match):
    with pytest.raises(InputError, match=match):
        knn_search(np.zeros((20, 3), np.float32), bad)


def test_knn_search_rejects_bad_features():
    with pytest.raises(InputError, match="dimension"):
        knn_search(np.zeros((20, 9), np.float32), 2)
    with pytest.raises(InputError, match="NaN"):
        knn_search(np.full((20, 3), np.nan, np.float32), 2)


# ----------------------------------------------------------------- solver


@pytest.mark.parametrize("preconditioner", ["ichol", "jacobi", "amg"])
def test_solve_cg_matches_direct_solve(preconditioner):
    if preconditioner == "amg":
        pytest.importorskip("pyamg")
    matrix = poisson_2d(30)
    rhs = np.random.default_rng(1).normal(size=matrix.shape[0])
    info = SolveInfo()
    x = solve_cg(matrix, rhs, preconditioner=preconditioner, rtol=1e-10, info=info)
    expected = scipy.sparse.linalg.spsolve(matrix.tocsc(), rhs)
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-8 * abs(expected).max())
    assert info.relative_residual <= 1e-10 and info.iterations >= 1


@needs_ext
def test_complete_cholesky_is_exact():
    """drop_tolerance=0 keeps all fill-in: the preconditioner is A^-1 itself
    (up to the float32 storage of the factor)."""
    matrix = poisson_2d(12, seed=4)
    x = np.random.default_rng(2).normal(size=matrix.shape[0])
    for reorder in (False, True):
        apply = solver_module.ichol_preconditioner(matrix, drop_tolerance=0.0, reorder=reorder)
        np.testing.assert_allclose(apply(matrix @ x), x, rtol=1e-4, atol=1e-4 * abs(x).max())


def test_ichol_converges_fast_on_a_cf_system(small_composite):
    c = small_composite
    regions = split_trimap(c.trimap, c.trimap.shape)
    system = cf_laplacian_system(c.image, regions.unknown, regions.known_alpha())
    jacobi, ichol = SolveInfo(), SolveInfo()
    x_ichol = solve_cg(system.matrix, system.rhs, preconditioner="ichol", info=ichol)
    x_jacobi = solve_cg(system.matrix, system.rhs, preconditioner="jacobi", info=jacobi)
    np.testing.assert_allclose(x_ichol, x_jacobi, atol=1e-4)
    assert ichol.iterations * 5 < jacobi.iterations


def test_solver_accepts_a_callable_preconditioner():
    matrix = poisson_2d(10)
    rhs = np.ones(matrix.shape[0])
    ilu = make_preconditioner(matrix, "jacobi")
    x = solve_cg(matrix, rhs, preconditioner=ilu, rtol=1e-10)
    np.testing.assert_allclose(matrix @ x, rhs, atol=1e-8)


def test_solver_input_errors():
    matrix = poisson_2d(5)
    with pytest.raises(InputError, match="square"):
        solve_cg(matrix[:-1], np.ones(24))
    with pytest.raises(InputError, match="rhs must have 25"):
        solve_cg(matrix, np.ones(3))
    with pytest.raises(InputError, match="finite"):
        solve_cg(matrix, np.full(25, np.nan))
    with pytest.raises(InputError, match="dense solves"):
        solve_cg(matrix.toarray(), np.ones(25))
    with pytest.raises(InputError, match="Valid preconditioners: ichol, amg, jacobi"):
        solve_cg(matrix, np.ones(25), preconditioner="ilu")
    with pytest.raises(ConvergenceError, match="did not reach"):
        solve_cg(matrix, np.ones(25), preconditioner="jacobi", maxiter=1, rtol=1e-12)
    indefinite = scipy.sparse.diags(np.r_[np.ones(24), -1.0]).tocsr()
    with pytest.raises((ConvergenceError, InputError)):
        solve_cg(indefinite, np.ones(25), preconditioner="ichol")


def test_zero_rhs_returns_zero():
    matrix = poisson_2d(4)
    assert not solve_cg(matrix, np.zeros(16)).any()


# ----------------------------------------------------------------- parallel factor and compiled CG


def _independent(matrix: scipy.sparse.csr_matrix, bounds: list[int]) -> bool:
    """No entry of ``matrix`` joins two of the ranges [bounds[q], bounds[q+1])."""
    label = np.full(matrix.shape[0], -1)
    for q in range(len(bounds) - 1):
        label[bounds[q] : bounds[q + 1]] = q
    coo = matrix.tocoo()
    both = (label[coo.row] >= 0) & (label[coo.col] >= 0)
    return bool((label[coo.row] == label[coo.col])[both].all())


@needs_ext
@pytest.mark.parametrize("n_parts", [2, 3])
def test_thread_parts_are_independent(n_parts):
    matrix = poisson_2d(40)
    perm = scipy.sparse.csgraph.reverse_cuthill_mckee(matrix, symmetric_mode=True).astype(np.int64)
    order, bounds = solver_module.thread_parts(matrix, perm, n_parts)
    n = matrix.shape[0]
    assert len(bounds) == n_parts + 1 and bounds[0] == 0 and bounds[-1] < n
    assert sorted(order.tolist()) == list(range(n))
    reordered = matrix[perm[order]][:, perm[order]]
    assert _independent(reordered, bounds)
    # Parts of comparable size (each cut stays within n/(5 parts) of its share), small separators.
    sizes = np.diff(bounds)
    assert sizes.min() > 0.4 * sizes.max()
    assert n - bounds[-1] <= 3 * 40 * (n_parts - 1)


def test_thread_parts_serial_when_asked_or_without_small_separator():
    matrix = poisson_2d(20)
    perm = np.arange(matrix.shape[0])
    order, bounds = solver_module.thread_parts(matrix, perm, 1)
    assert bounds == [0, matrix.shape[0]] and (order == perm).all()
    dense = scipy.sparse.csr_matrix(np.ones((50, 50)) + 50 * np.eye(50))  # every row touches every other
    assert solver_module.thread_parts(dense, np.arange(50), 2)[1] == [0, 50]


@needs_ext
def test_parallel_complete_cholesky_is_exact():
    """With drop_tolerance=0 the parts give the complete factor of the reordered matrix."""
    matrix = poisson_2d(30, seed=5)
    factor = solver_module.IncompleteCholesky(matrix, drop_tolerance=0.0, parts=2)
    assert len(factor.parts) == 3  # really split
    x = np.random.default_rng(3).normal(size=matrix.shape[0])
    np.testing.assert_allclose(factor(matrix @ x), x, rtol=1e-4, atol=1e-4 * abs(x).max())


@needs_ext
def test_parallel_and_serial_factors_agree():
    """Same order, same drops: the factor of each part does not depend on the others."""
    import torch

    matrix = poisson_2d(40, seed=6)
    parallel = solver_module.IncompleteCholesky(matrix, parts=2)
    system = parallel._system
    serial = torch.ops.mattezoo.ichol(*system, 1e-4, 0.0, 10**8, [0, matrix.shape[0]])
    assert serial[3] == -1
    n = matrix.shape[0]
    dense = [scipy.sparse.csc_matrix((f[2].numpy(), f[1].numpy(), f[0].numpy()), shape=(n, n)).toarray()
             for f in (parallel._factor, serial[:3])]
    np.testing.assert_allclose(dense[0], dense[1], atol=1e-6)


@needs_ext
def test_ichol_rejects_dependent_parts():
    import torch

    matrix = poisson_2d(10)
    indptr, indices, values = solver_module._torch_csr(matrix)
    with pytest.raises(RuntimeError, match="not independent"):
        torch.ops.mattezoo.ichol(indptr, indices, values, 1e-4, 0.0, 10**6, [0, 50, 100])
    with pytest.raises(RuntimeError, match="parts must"):
        torch.ops.mattezoo.ichol(indptr, indices, values, 1e-4, 0.0, 10**6, [0, 60, 40])


@needs_ext
def test_permute_symmetric_matches_scipy():
    import torch

    rng = np.random.default_rng(7)
    matrix = poisson_2d(9, seed=7)
    perm = rng.permutation(matrix.shape[0])
    scale = rng.uniform(0.5, 2.0, matrix.shape[0])
    out = torch.ops.mattezoo.csr_permute_symmetric(*solver_module._torch_csr(matrix), torch.from_numpy(perm), torch.from_numpy(scale))
    got = scipy.sparse.csr_matrix((out[2].numpy(), out[1].numpy(), out[0].numpy()), shape=matrix.shape)
    assert got.has_sorted_indices
    scaled = scipy.sparse.diags(scale) @ matrix @ scipy.sparse.diags(scale)
    np.testing.assert_allclose(got.toarray(), scaled.toarray()[perm][:, perm], rtol=1e-14)
    with pytest.raises(RuntimeError, match="not a permutation"):
        torch.ops.mattezoo.csr_permute_symmetric(*solver_module._torch_csr(matrix), torch.zeros(81, dtype=torch.long),
                                                 torch.from_numpy(scale))


@needs_ext
def test_compiled_cg_follows_the_python_loop(small_composite):
    """The compiled CG and the Python loop with the same preconditioner take the same steps."""
    c = small_composite
    regions = split_trimap(c.trimap, c.trimap.shape)
    system = cf_laplacian_system(c.image, regions.unknown, regions.known_alpha())
    factor = solver_module.IncompleteCholesky(system.matrix, drop_tolerance=1e-3)
    compiled, looped = SolveInfo(), SolveInfo()
    x_compiled = solve_cg(system.matrix, system.rhs, preconditioner=factor, info=compiled)
    x_looped = solve_cg(system.matrix, system.rhs, preconditioner=lambda r: factor(r), info=looped)
    assert compiled.iterations == looped.iterations
    np.testing.assert_allclose(x_compiled, x_looped, atol=1e-8)
    expected = scipy.sparse.linalg.spsolve(system.matrix.tocsc(), system.rhs)
    np.testing.assert_allclose(x_compiled, expected, atol=1e-4)
    # From a start vector next to the solution, fewer steps.
    warm = SolveInfo()
    x_warm = factor.solve(system.rhs, x0=expected + 1e-6, info=warm)
    assert warm.iterations < compiled.iterations
    np.testing.assert_allclose(x_warm, expected, atol=1e-4)


@needs_ext
def test_compiled_cg_reports_failures():
    matrix = poisson_2d(12)
    factor = solver_module.IncompleteCholesky(matrix, drop_tolerance=0.3)
    with pytest.raises(ConvergenceError, match="did not reach"):
        factor.solve(np.ones(144), maxiter=1, rtol=1e-14)
    with pytest.raises(InputError, match="rhs must have 144"):
        factor.solve(np.ones(3))
    with pytest.raises(InputError, match="parts"):
        solver_module.IncompleteCholesky(matrix, parts=0)
