"""shared_sampling: error budget on photo composites with exact mattes against
closed-form matting and the trimap's own guess, trimap edge cases,
determinism, the options and the plugin contract."""

import numpy as np
import pytest

import mattezoo
from composites import make_composite, sad
from mattezoo_methods.closed_form import estimate_alpha_closed_form
from mattezoo_methods.shared_sampling import SharedSampling, estimate_alpha_shared_sampling
from trimap_cases import check_trimap_edge_cases

# SAD (in thousands) on 96×128 composites; measured: 0.217, 0.152, 0.286
# (closed_form: 0.144, 0.126, 0.303), trimap-only guess 0.96, 1.08, 1.18.
CASES = [
    (dict(seed=0, foreground="astronaut", background="coffee"), 0.25),
    (dict(seed=1, foreground="chelsea", background="rocket"), 0.18),
    (dict(seed=2, foreground="coffee", background="astronaut"), 0.33),
]


@pytest.mark.parametrize("case, budget", CASES, ids=[c["foreground"] for c, _ in CASES])
def test_error_budget(case, budget):
    c = make_composite(96, 128, **case)
    alpha = estimate_alpha_shared_sampling(c.image, c.trimap)
    assert alpha.shape == c.alpha.shape and alpha.dtype == np.float64
    assert (alpha[c.trimap == 255] == 1).all() and (alpha[c.trimap == 0] == 0).all()
    ours = sad(alpha, c.alpha)
    assert ours < budget
    assert ours < 0.3 * sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)
    assert ours < 1.6 * sad(estimate_alpha_closed_form(c.image, c.trimap), c.alpha)


def test_expansion_confidence_and_smoothing_pay_off():
    """Switching off the expansion (k_i=0), the confidences (lam=0) or the smoothing (m=1) costs accuracy."""
    cases = [make_composite(96, 128, seed=seed) for seed in (0, 1)]

    def total(**options):
        return sum(sad(estimate_alpha_shared_sampling(c.image, c.trimap, **options), c.alpha) for c in cases)

    base = total()  # measured 0.555; k_i=0: 0.658, lam=0: 0.705, m=1: 0.841
    assert total(k_i=0) > 1.1 * base
    assert total(lam=0.0) > 1.15 * base
    assert total(m=1.0) > 1.3 * base
    defaults = SharedSampling()
    assert (defaults.k_i, defaults.k_c, defaults.k_g, defaults.k_r, defaults.lam, defaults.m) == (10, 5 / 256, 4, 200, 10, 100)
    assert (defaults.e_n, defaults.e_a, defaults.e_f, defaults.e_b) == (3, 2, 1, 4)


def test_trimap_edge_cases():
    check_trimap_edge_cases(estimate_alpha_shared_sampling)


def test_deterministic_and_uint8_input():
    c = make_composite(48, 64, seed=4)
    image8 = (c.image * 255).round().astype(np.uint8)
    first = estimate_alpha_shared_sampling(image8, c.trimap)
    np.testing.assert_array_equal(first, estimate_alpha_shared_sampling(image8, c.trimap))
    np.testing.assert_allclose(first, estimate_alpha_shared_sampling(image8 / 255.0, c.trimap), atol=1e-12)


def test_bad_options():
    c = make_composite(24, 30, seed=1)
    with pytest.raises(mattezoo.InputError, match="k_g must be an int >= 1"):
        estimate_alpha_shared_sampling(c.image, c.trimap, k_g=0)
    with pytest.raises(mattezoo.InputError, match="m must be > 0"):
        estimate_alpha_shared_sampling(c.image, c.trimap, m=0)
    with pytest.raises(mattezoo.InputError, match="k_c must be a finite number >= 0"):
        estimate_alpha_shared_sampling(c.image, c.trimap, k_c=-1)


def test_registered_method_runs_through_predict():
    c = make_composite(40, 48, seed=6)
    image8 = (c.image * 255).round().astype(np.uint8)
    spec = mattezoo.get_method("shared_sampling")
    assert spec.family == "classical" and spec.needs_trimap
    assert spec.paper(test_set="P3M-500-P (blurred)")[0].metrics["SAD"] == 10.553
    assert spec.paper(test_set="P3M-500-P (normal)")[0].metrics["SAD"] == 10.386
    alpha = mattezoo.predict("shared_sampling", image8, c.trimap)
    # predict hands the method float32 colours (x / 255 in float32); the samples are chosen on exactly those.
    as_predicted = (image8.astype(np.float32) / np.float32(255.0)).astype(np.float64)
    np.testing.assert_allclose(alpha, estimate_alpha_shared_sampling(as_predicted, c.trimap), atol=1e-6)
    method = mattezoo.create_method("shared_sampling", k_g=8)
    assert isinstance(method, SharedSampling) and method.k_g == 8
    with pytest.raises(mattezoo.InvalidOptionError, match="no option 'seed'"):
        mattezoo.create_method("shared_sampling", seed=1)
