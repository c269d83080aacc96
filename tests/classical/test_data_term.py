"""solve_with_data_term: the limits of its energy and a dense restatement on a tiny image."""

import numpy as np
import pytest

from composites import make_composite
from mattezoo.errors import InputError
from mattezoo.classical import cf_laplacian, solve_with_data_term, split_trimap
from mattezoo_methods.closed_form import estimate_alpha_closed_form


@pytest.fixture(scope="module")
def composite():
    return make_composite(24, 32, seed=3, foreground="astronaut", background="coffee")


def test_zero_weights_is_closed_form(composite):
    regions = split_trimap(composite.trimap, composite.image.shape[:2])
    n = int(regions.unknown.sum())
    alpha = solve_with_data_term(composite.image, regions, np.full(n, 0.3), np.zeros(n))
    np.testing.assert_allclose(alpha, estimate_alpha_closed_form(composite.image, composite.trimap), atol=1e-6)


def test_heavy_weights_pin_the_estimate(composite):
    regions = split_trimap(composite.trimap, composite.image.shape[:2])
    estimate = np.random.default_rng(0).uniform(0, 1, int(regions.unknown.sum()))
    alpha = solve_with_data_term(composite.image, regions, estimate, np.full(estimate.size, 1e6))
    np.testing.assert_allclose(alpha[regions.unknown], estimate, atol=1e-4)
    assert (alpha[regions.foreground] == 1).all() and (alpha[regions.background] == 0).all()


def test_matches_a_dense_solve(composite):
    # Minimise aᵀLa + Σ w (a - â)² over the unknown pixels with the known ones fixed, densely.
    image, regions = composite.image, split_trimap(composite.trimap, composite.image.shape[:2])
    unknown = regions.unknown.ravel()
    rng = np.random.default_rng(1)
    estimate, weights = rng.uniform(0, 1, unknown.sum()), rng.uniform(0, 0.05, unknown.sum())
    laplacian = cf_laplacian(image).toarray()
    known = regions.known_alpha().ravel()
    a_uu = laplacian[np.ix_(unknown, unknown)] + np.diag(weights)
    rhs = -laplacian[np.ix_(unknown, ~unknown)] @ known[~unknown] + weights * estimate
    expected = known.copy()
    expected[unknown] = np.linalg.solve(a_uu, rhs)
    alpha = solve_with_data_term(image, regions, estimate, weights, rtol=1e-10)
    np.testing.assert_allclose(alpha.ravel(), np.clip(expected, 0, 1), atol=1e-6)


def test_one_value_per_unknown_pixel(composite):
    regions = split_trimap(composite.trimap, composite.image.shape[:2])
    with pytest.raises(InputError, match="one entry per unknown pixel"):
        solve_with_data_term(composite.image, regions, np.zeros(3), np.zeros(3))
