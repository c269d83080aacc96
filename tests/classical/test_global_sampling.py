"""global_sampling: error budget on photo composites with exact mattes against
closed-form matting and the trimap's own guess, the raw sampled matte, seeds
and determinism, trimap edge cases, the options and the plugin contract."""

import numpy as np
import pytest

import mattezoo
from composites import make_composite, sad
from mattezoo_methods.closed_form import estimate_alpha_closed_form
from mattezoo_methods.global_sampling import GlobalSampling, estimate_alpha_global_sampling
from trimap_cases import check_trimap_edge_cases

# SAD (in thousands) on 96×128 composites; measured: 0.148, 0.126, 0.299
# (closed_form: 0.144, 0.126, 0.303; raw sampling without the Laplacian:
# 0.379, 0.255, 0.549), trimap-only guess 0.96, 1.08, 1.18.
CASES = [
    (dict(seed=0, foreground="astronaut", background="coffee"), 0.17),
    (dict(seed=1, foreground="chelsea", background="rocket"), 0.15),
    (dict(seed=2, foreground="coffee", background="astronaut"), 0.34),
]


@pytest.mark.parametrize("case, budget", CASES, ids=[c["foreground"] for c, _ in CASES])
def test_error_budget(case, budget):
    c = make_composite(96, 128, **case)
    guess = sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)
    alpha = estimate_alpha_global_sampling(c.image, c.trimap)
    assert alpha.shape == c.alpha.shape and alpha.dtype == np.float64
    assert (alpha[c.trimap == 255] == 1).all() and (alpha[c.trimap == 0] == 0).all()
    ours = sad(alpha, c.alpha)
    assert ours < budget and ours < 0.3 * guess
    assert ours < 1.1 * sad(estimate_alpha_closed_form(c.image, c.trimap), c.alpha)
    # The sampled matte alone already beats the trimap's guess clearly; the smoothing improves on it.
    raw = sad(estimate_alpha_global_sampling(c.image, c.trimap, smooth=False), c.alpha)
    assert raw < 0.55 * guess and ours < 0.7 * raw


def test_seeded_search():
    c = make_composite(48, 64, seed=3)
    a = estimate_alpha_global_sampling(c.image, c.trimap, seed=5, smooth=False)
    np.testing.assert_array_equal(a, estimate_alpha_global_sampling(c.image, c.trimap, seed=5, smooth=False))
    assert not np.array_equal(a, estimate_alpha_global_sampling(c.image, c.trimap, seed=6, smooth=False))
    smooth = estimate_alpha_global_sampling(c.image, c.trimap, seed=5)
    np.testing.assert_array_equal(smooth, estimate_alpha_global_sampling(c.image, c.trimap, seed=5))
    # Without rounds the random initial pairs remain: far worse than ten rounds.
    unsearched = estimate_alpha_global_sampling(c.image, c.trimap, seed=5, smooth=False, iterations=0)
    assert sad(unsearched, c.alpha) > 1.5 * sad(a, c.alpha)


def test_trimap_edge_cases():
    check_trimap_edge_cases(estimate_alpha_global_sampling)


def test_bad_options():
    c = make_composite(24, 30, seed=1)
    with pytest.raises(mattezoo.InputError, match="iterations must be an int >= 0"):
        estimate_alpha_global_sampling(c.image, c.trimap, iterations=-1)
    with pytest.raises(mattezoo.InputError, match="sigma must be > 0"):
        estimate_alpha_global_sampling(c.image, c.trimap, sigma=0)
    with pytest.raises(mattezoo.InputError, match="seed must be an int"):
        estimate_alpha_global_sampling(c.image, c.trimap, seed="1")
    with pytest.raises(mattezoo.InputError, match="kappa must be a finite number >= 0"):
        GlobalSampling(kappa=float("inf"))


def test_registered_method_runs_through_predict():
    c = make_composite(40, 48, seed=6)
    image8 = (c.image * 255).round().astype(np.uint8)
    spec = mattezoo.get_method("global_sampling")
    assert spec.family == "classical" and spec.needs_trimap
    assert spec.paper(test_set="P3M-500-P (blurred)")[0].metrics["SAD"] == 9.6157
    assert spec.paper(test_set="P3M-500-P (normal)")[0].metrics["SAD"] == 9.4908
    alpha = mattezoo.predict("global_sampling", image8, c.trimap)
    # predict hands the method float32 colours (x / 255 in float32); the search sees exactly those.
    as_predicted = (image8.astype(np.float32) / np.float32(255.0)).astype(np.float64)
    np.testing.assert_allclose(alpha, estimate_alpha_global_sampling(as_predicted, c.trimap), atol=1e-6)
    method = mattezoo.create_method("global_sampling", seed=3, smooth=False)
    assert isinstance(method, GlobalSampling) and method.seed == 3 and not method.smooth
    with pytest.raises(mattezoo.InvalidOptionError, match="no option 'k_g'"):
        mattezoo.create_method("global_sampling", k_g=4)


def test_foreground_away_from_the_unknown_region():
    """Foreground that does not touch the unknown band still supplies samples (all its pixels)."""
    c = make_composite(24, 30, seed=2)
    trimap = np.zeros((24, 30), np.uint8)
    trimap[2:6, 2:6] = 255
    trimap[10:20, 12:24] = 128
    alpha = estimate_alpha_global_sampling(c.image, trimap, smooth=False)
    assert np.isfinite(alpha).all() and (alpha[trimap == 255] == 1).all() and (alpha[trimap == 0] == 0).all()
    assert alpha[trimap == 128].max() > 0  # some unknown pixels look like the foreground square
