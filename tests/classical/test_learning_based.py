"""learning_based: the Laplacian against a per-window reference written from
the paper, the matte against pymatting's estimate_alpha_lbdm, error budgets
beside closed_form on composites with exact mattes, trimap edge cases and the
plugin contract."""

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch

import mattezoo
from composites import make_composite, sad
from mattezoo_methods import learning_based
from mattezoo_methods.closed_form import estimate_alpha_closed_form
from mattezoo_methods.learning_based import (
    LearningBasedMatting,
    estimate_alpha_learning_based,
    lbdm_laplacian,
    lbdm_laplacian_system,
    lbdm_window_laplacians,
)
from trimap_cases import check_trimap_edge_cases


def reference_laplacian(image: np.ndarray, epsilon: float, radius: int) -> np.ndarray:
    """Dense ``Σ_w (I − F_w)ᵀ(I − F_w)``, one window at a time, with the paper's
    ``m×m`` kernel form ``F = K (K + εI)⁻¹``, ``K = X Xᵀ``, ``X = [rgb, 1]``."""
    height, width, _ = image.shape
    size = 2 * radius + 1
    m = size * size
    index = np.arange(height * width).reshape(height, width)
    laplacian = np.zeros((height * width, height * width))
    for y in range(height - size + 1):
        for x in range(width - size + 1):
            pixels = index[y:y + size, x:x + size].ravel()
            features = np.hstack([image[y:y + size, x:x + size].reshape(m, 3), np.ones((m, 1))])
            kernel = features @ features.T
            f = np.linalg.solve(kernel + epsilon * np.eye(m), kernel).T  # K (K + εI)⁻¹
            laplacian[np.ix_(pixels, pixels)] += (np.eye(m) - f).T @ (np.eye(m) - f)
    return laplacian


def tiny_image() -> np.ndarray:
    image = np.random.default_rng(0).uniform(size=(6, 5, 3))
    image[:3, :3] = image[0, 0]  # one exactly flat window, and windows that are nearly so
    return image


# The reference's m×m solve of K + εI (condition ~1e8 at ε = 1e-7) is itself
# only good to ~2e-8 there, hence the looser tolerance; at 1e-3 both agree to 1e-12.
@pytest.mark.parametrize("epsilon, atol", [(1e-7, 1e-6), (1e-3, 1e-10)])
@pytest.mark.parametrize("radius", [1, 2])
def test_laplacian_matches_per_window_reference(epsilon, atol, radius):
    image = tiny_image()
    expected = reference_laplacian(image, epsilon, radius)
    ours = lbdm_laplacian(image, epsilon=epsilon, radius=radius)
    assert ours.shape == (30, 30)
    np.testing.assert_allclose(ours.toarray(), expected, atol=atol, rtol=0)
    # Only pixel pairs that share a window are stored.
    assert ours.nnz == np.count_nonzero(np.abs(expected) > 1e-300)


def test_constrained_system_is_the_restricted_laplacian():
    image = tiny_image()
    rng = np.random.default_rng(1)
    unknown = rng.uniform(size=(6, 5)) < 0.5
    known_alpha = np.where(unknown, 0.0, rng.integers(0, 2, size=(6, 5)).astype(float))
    full = reference_laplacian(image, 1e-3, 1)
    u = unknown.ravel()
    system = lbdm_laplacian_system(image, unknown, known_alpha, epsilon=1e-3, radius=1)
    np.testing.assert_allclose(system.matrix.toarray(), full[np.ix_(u, u)], atol=1e-10, rtol=0)
    np.testing.assert_allclose(system.rhs, -full[np.ix_(u, ~u)] @ known_alpha.ravel()[~u], atol=1e-10, rtol=0)
    assert system.matrix.has_sorted_indices


def test_chunked_assembly_matches_one_chunk(monkeypatch):
    c = make_composite(20, 24, seed=1)
    unknown, known_alpha = c.trimap == 128, (c.trimap == 255).astype(float)
    whole = lbdm_laplacian_system(c.image, unknown, known_alpha)
    monkeypatch.setattr(learning_based, "CHUNK_ENTRIES", 7 * 81)  # 7 windows per chunk
    chunked = lbdm_laplacian_system(c.image, unknown, known_alpha)
    assert abs(chunked.matrix - whole.matrix).max() < 1e-12
    np.testing.assert_allclose(chunked.rhs, whole.rhs, atol=1e-12, rtol=0)


def test_flat_windows_are_exact_at_the_paper_epsilon():
    # A window of one colour c: K = k·11ᵀ with k = |c|² + 1, so
    # (I − F)² = I − (1 − (ε / (k·m + ε))²) 11ᵀ / m in closed form.
    epsilon, m = 1e-7, 9
    colours = np.array([[0.2, 0.5, 0.9], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    local = lbdm_window_laplacians(np.repeat(colours[:, None, :], m, axis=1), epsilon)
    for colour, matrix in zip(colours, local):
        km = (colour @ colour + 1.0) * m
        expected = np.eye(m) - (1 - (epsilon / (km + epsilon)) ** 2) * np.ones((m, m)) / m
        np.testing.assert_allclose(matrix, expected, atol=1e-13, rtol=0)


def test_alpha_agrees_with_pymatting():
    pymatting = pytest.importorskip("pymatting")
    c = make_composite(64, 80, seed=0)
    theirs = pymatting.estimate_alpha_lbdm(c.image, c.trimap / 255.0)
    ours = estimate_alpha_learning_based(c.image, c.trimap)
    unknown = c.trimap == 128
    # Hard constraints here, pymatting's soft ones (λ = 100) there. Measured
    # on seeds 0-5: max 2.6e-3 to 1.6e-2, mean over the unknown pixels <= 6.2e-4
    # (seed 0: 5.4e-3 and 3.7e-4).
    gap = np.abs(ours - theirs)
    assert gap.max() < 1e-2 and gap[unknown].mean() < 1e-3
    # Our Laplacian in pymatting's soft system (L + λC) α = λ b reproduces
    # their matte to their CG tolerance (measured 1.7e-6): the constraint form
    # is the whole difference.
    lam = 100.0
    system = lbdm_laplacian(c.image) + scipy.sparse.diags(lam * (~unknown).ravel().astype(float))
    soft = scipy.sparse.linalg.spsolve(system.tocsc(), lam * (c.trimap == 255).ravel().astype(float))
    soft = np.clip(soft, 0, 1).reshape(c.alpha.shape)
    assert np.abs(soft - theirs).max() < 1e-4
    np.testing.assert_allclose(np.abs(soft - ours).max(), gap.max(), rtol=0.05)


# SAD (in thousands) on 96×128 composites (the cases of test_closed_form);
# measured: 0.1435, 0.1254, 0.3038; closed_form 0.1436, 0.1259, 0.3030;
# pymatting's estimate_alpha_lbdm 0.1437, 0.1256, 0.3042.
CASES = [
    (dict(seed=0, foreground="astronaut", background="coffee"), 0.17),
    (dict(seed=1, foreground="chelsea", background="rocket"), 0.15),
    (dict(seed=2, foreground="coffee", background="astronaut"), 0.36),
]


@pytest.mark.parametrize("case, budget", CASES, ids=[c["foreground"] for c, _ in CASES])
def test_error_budget_beside_closed_form(case, budget):
    c = make_composite(96, 128, **case)
    alpha = estimate_alpha_learning_based(c.image, c.trimap)
    assert alpha.shape == c.alpha.shape and alpha.dtype == np.float64
    assert (alpha[c.trimap == 255] == 1).all() and (alpha[c.trimap == 0] == 0).all()
    ours = sad(alpha, c.alpha)
    assert ours < budget
    assert ours < 0.3 * sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)
    assert ours < 1.05 * sad(estimate_alpha_closed_form(c.image, c.trimap), c.alpha)


def test_trimap_edge_cases():
    check_trimap_edge_cases(estimate_alpha_learning_based)


def test_no_unknown_pixels_builds_nothing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the Laplacian was built for a trimap without unknown pixels")

    monkeypatch.setattr(learning_based, "lbdm_laplacian_system", fail)
    c = make_composite(40, 48, seed=2)
    known = np.where(c.trimap == 255, 255, 0).astype(np.uint8)
    np.testing.assert_array_equal(estimate_alpha_learning_based(c.image, known), known / 255.0)


def test_options_and_uint8_image():
    c = make_composite(48, 64, seed=4)
    image8 = (c.image * 255).round().astype(np.uint8)
    alpha = estimate_alpha_learning_based(image8, c.trimap, epsilon=1e-5, radius=2)
    assert sad(alpha, c.alpha) < 0.5 * sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(mattezoo.InputError, match="radius must be an int >= 1"):
            estimate_alpha_learning_based(c.image, c.trimap, radius=bad)
    for bad in (0.0, -1e-7, float("nan"), float("inf")):
        with pytest.raises(mattezoo.InputError, match="epsilon must be a finite number > 0"):
            estimate_alpha_learning_based(c.image, c.trimap, epsilon=bad)
    strip = np.array([[0, 128, 255] * 4] * 4, np.uint8)
    with pytest.raises(mattezoo.InputError, match="image 4×12 is smaller than one 5×5 window"):
        estimate_alpha_learning_based(c.image[:4, :12], strip, radius=2)
    with pytest.raises(mattezoo.InputError, match="must both be"):
        lbdm_laplacian_system(c.image, np.ones((3, 3), bool), np.zeros((48, 64)))


def test_registered_method_runs_through_predict():
    c = make_composite(40, 48, seed=6)
    image8 = (c.image * 255).round().astype(np.uint8)
    spec = mattezoo.get_method("learning_based")
    assert spec.family == "classical" and spec.needs_trimap
    assert spec.paper(test_set="P3M-500-P (normal)")[0].metrics["SAD"] == 10.151
    alpha = mattezoo.predict("learning_based", image8, c.trimap)
    np.testing.assert_allclose(alpha, estimate_alpha_learning_based(image8, c.trimap), atol=1e-6)
    method = mattezoo.create_method("learning_based", epsilon=1e-6)
    assert isinstance(method, LearningBasedMatting) and method.epsilon == 1e-6
    with pytest.raises(mattezoo.InvalidOptionError, match="no option 'lambda_'"):
        mattezoo.create_method("learning_based", lambda_=1)


def test_batched_tensor_call_matches_single_images():
    method = LearningBasedMatting()
    comps = [make_composite(32, 40, seed=s) for s in (7, 8)]
    images = torch.from_numpy(np.stack([c.image for c in comps])).permute(0, 3, 1, 2).float()
    trimaps = torch.from_numpy(np.stack([c.trimap for c in comps]) / 255.0)[:, None].float()
    alpha = method(images, trimaps)
    assert alpha.shape == (2, 1, 32, 40) and alpha.dtype == torch.float32
    for i in range(2):
        single = estimate_alpha_learning_based(images[i].permute(1, 2, 0).double().numpy(), trimaps[i, 0].double().numpy())
        np.testing.assert_allclose(alpha[i, 0].numpy(), single, atol=1e-6)
