"""Foreground estimation against the known F of photo composites, the compiled
kernel against the NumPy reference, and side by side with pymatting."""

import numpy as np
import pytest
import torch

from composites import make_composite
from mattezoo.testing import cpu_and_cuda
from mattezoo.classical import estimate_foreground
from mattezoo.classical import foreground as foreground_module
from mattezoo.classical.foreground import estimate_foreground_reference
from mattezoo.errors import InputError
from mattezoo.ops._native import op_loaded


def foreground_error(fg: np.ndarray, c) -> float:
    """Mean absolute colour error, weighted by alpha (where F is visible at all)."""
    weight = c.alpha[..., None]
    return float((np.abs(fg - c.foreground) * weight).sum() / (3 * weight.sum()))


@pytest.fixture(scope="module")
def composite():
    return make_composite(96, 128, seed=2, foreground="astronaut", background="coffee")


def test_recovers_known_foreground(composite):
    c = composite
    fg, bg = estimate_foreground(c.image, c.alpha, return_background=True)
    assert fg.shape == bg.shape == c.image.shape and fg.dtype == np.float32
    assert fg.min() >= 0 and fg.max() <= 1
    error = foreground_error(fg, c)
    naive = foreground_error(c.image, c)  # cutting out with F = I: the background bleeds in
    assert error < 0.02
    assert error < 0.8 * naive
    # In the fractional band, where bleeding happens, the gain is largest.
    band = (c.alpha > 0.05) & (c.alpha < 0.95)
    assert np.abs(fg - c.foreground)[band].mean() < 0.6 * np.abs(c.image - c.foreground)[band].mean()
    # The estimate explains the image: alpha F + (1 - alpha) B ~ I.
    recomposed = c.alpha[..., None] * fg + (1 - c.alpha[..., None]) * bg
    assert np.abs(recomposed - c.image).mean() < 0.01


def test_compiled_kernel_matches_reference(composite, monkeypatch):
    c = composite
    fg, bg = estimate_foreground(c.image, c.alpha, return_background=True)
    ref_fg, ref_bg = estimate_foreground_reference(c.image, c.alpha)
    np.testing.assert_allclose(fg, ref_fg, atol=2e-4)
    np.testing.assert_allclose(bg, ref_bg, atol=2e-4)
    monkeypatch.setattr(foreground_module, "op_loaded", lambda name: False)
    np.testing.assert_allclose(estimate_foreground(c.image, c.alpha), ref_fg, atol=0)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (33, 17)])
def test_odd_sizes(shape):
    rng = np.random.default_rng(0)
    image = rng.uniform(size=(*shape, 3))
    alpha = rng.uniform(size=shape)
    fg = estimate_foreground(image, alpha)
    ref, _ = estimate_foreground_reference(image, alpha)
    assert fg.shape == (*shape, 3)
    np.testing.assert_allclose(fg, ref, atol=2e-4)


def test_matches_pymatting_error(composite):
    pymatting = pytest.importorskip("pymatting")
    c = composite
    ours = foreground_error(estimate_foreground(c.image, c.alpha), c)
    theirs = foreground_error(pymatting.estimate_foreground_ml(c.image, c.alpha), c)
    assert ours <= theirs * 1.05 + 1e-4


def test_input_errors(composite):
    c = composite
    with pytest.raises(InputError, match="must match"):
        estimate_foreground(c.image, c.alpha[:-1])
    with pytest.raises(InputError, match=r"\[0,1\]"):
        estimate_foreground(c.image, c.alpha * 2)
    with pytest.raises(InputError, match="NaN"):
        estimate_foreground(c.image, np.full(c.alpha.shape, np.nan))
    with pytest.raises(InputError, match="H×W×3"):
        estimate_foreground(c.image[..., 0], c.alpha)
    with pytest.raises(InputError, match="n_big_iterations"):
        estimate_foreground(c.image, c.alpha, n_big_iterations=-1)
    with pytest.raises(InputError, match="cannot both be 0"):
        estimate_foreground(c.image, c.alpha, regularization=0, gradient_weight=0)


@pytest.mark.parametrize("device", cpu_and_cuda())
def test_op_runs_on_device(device, composite):
    if not op_loaded("estimate_foreground_ml"):
        pytest.skip("compiled ops not loaded")
    c = composite
    image = torch.from_numpy(c.image.astype(np.float32)).to(device)
    alpha = torch.from_numpy(c.alpha.astype(np.float32)).to(device)
    fg, _ = torch.ops.mattezoo.estimate_foreground_ml(image, alpha, 1e-5, 10, 2, 32, 1.0)
    assert fg.device.type == device
    ref, _ = estimate_foreground_reference(c.image, c.alpha)
    np.testing.assert_allclose(fg.cpu().numpy(), ref, atol=2e-4)


@pytest.mark.parametrize("device", cpu_and_cuda())
def test_tensor_inputs_run_on_their_device(device, composite):
    """Tensors in, tensors out on the same device, equal to the NumPy path's result."""
    c = composite
    image = torch.from_numpy(c.image).to(device)  # float64: converted like the NumPy path does
    alpha = torch.from_numpy(c.alpha).to(device)
    fg, bg = estimate_foreground(image, alpha, return_background=True)
    assert fg.device.type == device and fg.dtype == torch.float32 and fg.shape == image.shape
    ref_fg, ref_bg = estimate_foreground(c.image, c.alpha, return_background=True)
    np.testing.assert_allclose(fg.cpu().numpy(), ref_fg, atol=1e-4)
    np.testing.assert_allclose(bg.cpu().numpy(), ref_bg, atol=1e-4)
    image8 = torch.from_numpy((c.image * 255).round().astype(np.uint8)).to(device)
    np.testing.assert_allclose(estimate_foreground(image8, alpha).cpu().numpy(),
                               estimate_foreground(image8.cpu().numpy(), c.alpha), atol=1e-4)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("channels, shape", [(3, (61, 83)), (3, (1, 9)), (5, (20, 31)), (1, (16, 16))])
def test_cuda_kernel_matches_cpu_kernel(channels, shape):
    """The CUDA red-black sweeps against the CPU kernel (RGB fast path and the generic channel count)."""
    rng = np.random.default_rng(channels)
    image = torch.from_numpy(rng.uniform(size=(*shape, channels)).astype(np.float32))
    alpha = torch.from_numpy(rng.uniform(size=shape).astype(np.float32))
    alpha[alpha < 0.2] = 0
    alpha[alpha > 0.8] = 1
    cpu = torch.ops.mattezoo.estimate_foreground_ml(image, alpha, 1e-5, 10, 2, 32, 1.0)
    gpu = torch.ops.mattezoo.estimate_foreground_ml(image.cuda(), alpha.cuda(), 1e-5, 10, 2, 32, 1.0)
    for a, b in zip(cpu, gpu):
        assert b.is_cuda and b.shape == a.shape
        np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), atol=1e-4)


def test_tensor_input_errors(composite):
    c = composite
    image, alpha = torch.from_numpy(c.image), torch.from_numpy(c.alpha)
    with pytest.raises(InputError, match="torch tensor like the other"):
        estimate_foreground(image, c.alpha)
    with pytest.raises(InputError, match="H×W×3"):
        estimate_foreground(image[..., :2], alpha)
    with pytest.raises(InputError, match="like the image"):
        estimate_foreground(image, alpha[:-1])
    with pytest.raises(InputError, match="NaN"):
        estimate_foreground(image, torch.full_like(alpha, float("nan")))
    with pytest.raises(InputError, match=r"\[0,1\]"):
        estimate_foreground(image * 2, alpha)
    with pytest.raises(InputError, match="uint8"):
        estimate_foreground(image, alpha.to(torch.int32))
    with pytest.raises(InputError, match="same device"):
        estimate_foreground(image, alpha.to("meta"))
    with pytest.raises(InputError, match="small_size"):
        estimate_foreground(image, alpha, small_size=-2)


def test_predict_cli_writes_clean_cutouts(tmp_path):
    from mattezoo.cli import main
    from mattezoo.images import read_gray, write_png

    c = make_composite(48, 64, seed=4)
    write_png(tmp_path / "photo.png", (c.image * 255).round().astype(np.uint8))
    write_png(tmp_path / "photo_trimap.png", c.trimap)
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "photo.png"), "--method", "closed_form", "--trimap", str(tmp_path / "photo_trimap.png"),
            "--out", str(out), "--cutout"]
    assert main(argv) == 0
    import cv2

    rgba = cv2.cvtColor(cv2.imread(str(out / "photo_cutout.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA) / 255.0
    alpha = read_gray(out / "photo.png") / 255.0
    np.testing.assert_array_equal(rgba[..., 3], alpha)
    # The colours are the estimated foreground (whose quality the tests above check), not the raw image.
    image8 = (c.image * 255).round().astype(np.uint8)
    expected = estimate_foreground(image8, mattezoo_predict_alpha(image8, c.trimap))
    np.testing.assert_allclose(rgba[..., :3], expected, atol=1 / 255 + 1e-6)
    assert np.abs(rgba[..., :3] - image8 / 255.0)[(alpha > 0) & (alpha < 1)].mean() > 0.01


def mattezoo_predict_alpha(image8, trimap):
    import mattezoo

    return mattezoo.predict("closed_form", image8, trimap)
