"""closed_form: error budget on photo composites with exact mattes, trimap edge
cases, the plugin contract, and SAD side by side with pymatting."""

import numpy as np
import pytest
import torch

import mattezoo
from composites import make_composite, sad
from mattezoo_methods.closed_form import ClosedFormMatting, estimate_alpha_closed_form
from trimap_cases import check_trimap_edge_cases

# SAD (in thousands) on 96×128 composites; measured: 0.144, 0.126, 0.303
# (pymatting's estimate_alpha_cf scores the same), trimap-only guess ~1.0.
CASES = [
    (dict(seed=0, foreground="astronaut", background="coffee"), 0.17),
    (dict(seed=1, foreground="chelsea", background="rocket"), 0.15),
    (dict(seed=2, foreground="coffee", background="astronaut"), 0.36),
]


@pytest.mark.parametrize("case, budget", CASES, ids=[c["foreground"] for c, _ in CASES])
def test_error_budget(case, budget):
    c = make_composite(96, 128, **case)
    alpha = estimate_alpha_closed_form(c.image, c.trimap)
    assert alpha.shape == c.alpha.shape and alpha.dtype == np.float64
    assert (alpha[c.trimap == 255] == 1).all() and (alpha[c.trimap == 0] == 0).all()
    assert sad(alpha, c.alpha) < budget
    # The matte must be much better than the trimap's own guess (unknown = 0.5).
    assert sad(alpha, c.alpha) < 0.3 * sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)


def test_trimap_edge_cases():
    check_trimap_edge_cases(estimate_alpha_closed_form)


def test_uint8_image_and_options():
    c = make_composite(48, 64, seed=4)
    image8 = (c.image * 255).round().astype(np.uint8)
    alpha = estimate_alpha_closed_form(image8, c.trimap, epsilon=1e-6, radius=2)
    guess = sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)
    assert sad(alpha, c.alpha) < 0.5 * guess
    with pytest.raises(mattezoo.InputError, match="radius"):
        estimate_alpha_closed_form(c.image, c.trimap, radius=-1)


def test_registered_method_runs_through_predict():
    c = make_composite(48, 64, seed=6)
    image8 = (c.image * 255).round().astype(np.uint8)
    spec = mattezoo.get_method("closed_form")
    assert spec.family == "classical" and spec.needs_trimap
    assert {r.test_set for r in spec.paper(source="P3M Table 1")} == {"P3M-500-P (blurred)", "P3M-500-P (normal)"}
    alpha = mattezoo.predict("closed_form", image8, c.trimap)
    np.testing.assert_allclose(alpha, estimate_alpha_closed_form(image8, c.trimap), atol=1e-6)
    method = mattezoo.create_method("closed_form", epsilon=1e-6)
    assert isinstance(method, ClosedFormMatting) and method.epsilon == 1e-6
    with pytest.raises(mattezoo.InvalidOptionError, match="no option 'eps'"):
        mattezoo.create_method("closed_form", eps=1)


def test_batched_tensor_call_matches_single_images():
    method = ClosedFormMatting()
    comps = [make_composite(32, 40, seed=s) for s in (7, 8)]
    images = torch.from_numpy(np.stack([c.image for c in comps])).permute(0, 3, 1, 2).float()
    trimaps = torch.from_numpy(np.stack([c.trimap for c in comps]) / 255.0)[:, None].float()
    alpha = method(images, trimaps)
    assert alpha.shape == (2, 1, 32, 40) and alpha.dtype == torch.float32
    for i, c in enumerate(comps):
        single = estimate_alpha_closed_form(images[i].permute(1, 2, 0).double().numpy(), trimaps[i, 0].double().numpy())
        np.testing.assert_allclose(alpha[i, 0].numpy(), single, atol=1e-6)
    with pytest.raises(mattezoo.InputError, match="does not match"):
        method(images, trimaps[:1])


@pytest.mark.parametrize("seed", [0, 1])
def test_sad_matches_pymatting(seed):
    pymatting = pytest.importorskip("pymatting")
    c = make_composite(96, 128, seed=seed)
    ours = sad(estimate_alpha_closed_form(c.image, c.trimap), c.alpha)
    theirs = sad(pymatting.estimate_alpha_cf(c.image, c.trimap / 255.0), c.alpha)
    assert ours <= theirs * 1.01 + 1e-3
