"""knn: error budget on photo composites with exact mattes, trimap edge cases,
the plugin contract, and SAD side by side with pymatting."""

import numpy as np
import pytest

import mattezoo
from composites import make_composite, sad
from mattezoo_methods.knn import KnnMatting, estimate_alpha_knn, knn_features
from trimap_cases import check_trimap_edge_cases

# SAD (in thousands) on 96×128 composites; measured: 0.317, 0.252, 0.416
# (pymatting's estimate_alpha_knn: 0.316, 0.249, 0.417), trimap-only guess ~1.0.
CASES = [
    (dict(seed=0, foreground="astronaut", background="coffee"), 0.37),
    (dict(seed=1, foreground="chelsea", background="rocket"), 0.30),
    (dict(seed=2, foreground="coffee", background="astronaut"), 0.48),
]


@pytest.mark.parametrize("case, budget", CASES, ids=[c["foreground"] for c, _ in CASES])
def test_error_budget(case, budget):
    c = make_composite(96, 128, **case)
    alpha = estimate_alpha_knn(c.image, c.trimap)
    assert alpha.shape == c.alpha.shape
    assert (alpha[c.trimap == 255] == 1).all() and (alpha[c.trimap == 0] == 0).all()
    assert sad(alpha, c.alpha) < budget
    assert sad(alpha, c.alpha) < 0.4 * sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)


def test_soft_kernel_and_single_neighbour_set():
    c = make_composite(64, 80, seed=3)
    soft = estimate_alpha_knn(c.image, c.trimap, kernel="soft")
    paper_like = estimate_alpha_knn(c.image, c.trimap, n_neighbors=(10,), spatial_weights=(1.0,))
    for alpha in (soft, paper_like):
        assert sad(alpha, c.alpha) < 0.4 * sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)
    with pytest.raises(mattezoo.InputError, match="Valid kernels: binary, soft"):
        estimate_alpha_knn(c.image, c.trimap, kernel="gaussian")
    with pytest.raises(mattezoo.InputError, match="equal length"):
        estimate_alpha_knn(c.image, c.trimap, n_neighbors=(10, 5), spatial_weights=(1.0,))


def test_features_are_colour_and_weighted_position():
    image = np.random.default_rng(0).uniform(size=(3, 5, 3))
    f = knn_features(image, 2.0).reshape(3, 5, 5)
    np.testing.assert_allclose(f[..., :3], image, atol=1e-7)
    np.testing.assert_allclose(f[0, :, 3], 2.0 * np.linspace(0, 1, 5), atol=1e-7)
    np.testing.assert_allclose(f[:, 0, 4], 2.0 * np.linspace(0, 1, 3), atol=1e-7)


def test_trimap_edge_cases():
    check_trimap_edge_cases(estimate_alpha_knn)


def test_registered_method_runs_through_predict():
    c = make_composite(40, 48, seed=6)
    image8 = (c.image * 255).round().astype(np.uint8)
    spec = mattezoo.get_method("knn")
    assert spec.family == "classical" and spec.paper(test_set="P3M-500-P (normal)")[0].metrics["SAD"] == 15.366
    alpha = mattezoo.predict("knn", image8, c.trimap)
    np.testing.assert_allclose(alpha, estimate_alpha_knn(image8, c.trimap), atol=1e-6)
    assert isinstance(mattezoo.create_method("knn", kernel="soft"), KnnMatting)
    with pytest.raises(mattezoo.InputError, match="kernel"):
        mattezoo.create_method("knn", kernel="hard")


@pytest.mark.parametrize("seed", [0, 1])
def test_sad_matches_pymatting(seed):
    pymatting = pytest.importorskip("pymatting")
    c = make_composite(96, 128, seed=seed)
    ours = sad(estimate_alpha_knn(c.image, c.trimap), c.alpha)
    theirs = sad(pymatting.estimate_alpha_knn(c.image, c.trimap / 255.0), c.alpha)
    assert ours <= theirs * 1.01 + 1e-3
