"""Each training loss against a slow numpy reference written from the official formulas."""

import numpy as np
import pytest
import torch

from mattezoo.errors import InputError
from mattezoo.train import losses as L

RNG = np.random.default_rng(7)


def _case(b=2, h=40, w=36):
    alpha = RNG.random((b, 1, h, w))
    alpha[:, :, : h // 3] = 0.0
    alpha[:, :, -h // 4 :] = 1.0
    trimap = np.full((b, 1, h, w), 0.5)
    trimap[alpha == 0.0] = 0.0
    trimap[alpha == 1.0] = 1.0
    pred = np.clip(alpha + 0.2 * RNG.standard_normal(alpha.shape), 0, 1)
    return pred, alpha, trimap


def _t(x):
    return torch.tensor(x, dtype=torch.float32)


def ref_cross_entropy(logits, trimap):
    cls = np.rint(trimap[:, 0] * 2).astype(int)
    total = 0.0
    b, _, h, w = logits.shape
    for n in range(b):
        for y in range(h):
            for x in range(w):
                z = logits[n, :, y, x].astype(np.float64)
                lse = np.log(np.exp(z - z.max()).sum()) + z.max()
                total += lse - z[cls[n, y, x]]
    return total / (b * h * w)


def ref_alpha(pred, alpha, weight=None):
    d = pred - alpha
    if weight is None:
        return np.sqrt(d * d + 1e-12).mean()
    d = d * weight
    return np.sqrt(d * d + 1e-12).sum() / (weight.sum() + 1)


def ref_kernel():
    k = np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            k[i, j] = np.exp(-((i - 2) ** 2)) + np.exp(-((j - 2) ** 2))
    return k / k.sum()


def ref_pyramid(img):
    k = ref_kernel()
    levels, cur = [], img
    for _ in range(5):
        h, w = cur.shape
        padded = np.pad(cur, 2, mode="edge")
        smooth = np.zeros_like(cur)
        for y in range(h):
            for x in range(w):
                smooth[y, x] = (padded[y : y + 5, x : x + 5] * k).sum()
        levels.append(cur - smooth)
        h2, w2 = h // 2, w // 2
        cur = smooth[: 2 * h2, : 2 * w2].reshape(h2, 2, w2, 2).mean(axis=(1, 3))
    levels.append(cur)
    return levels


def ref_laplacian(pred, alpha, weight=None):
    if weight is not None:
        pred, alpha = pred * weight, alpha * weight
    total = 0.0
    pyr = [[ref_pyramid(p[0]) for p in x] for x in (pred, alpha)]
    for level in range(6):
        diffs = [np.abs(pyr[0][n][level] - pyr[1][n][level]) for n in range(pred.shape[0])]
        total += np.mean(np.stack(diffs))
    return total


def test_trimap_classes_and_weight():
    t = _t([[[[0.0, 0.5, 1.0, 0.5]]]])
    assert L.trimap_classes(t).tolist() == [[[0, 1, 2, 1]]]
    assert L.transition_weight(t).tolist() == [[[[0.0, 1.0, 0.0, 1.0]]]]


def test_cross_entropy_matches_reference():
    _, _, trimap = _case(2, 9, 7)
    logits = RNG.standard_normal((2, 3, 9, 7)) * 3
    assert L.trimap_cross_entropy(_t(logits), _t(trimap)).item() == pytest.approx(ref_cross_entropy(logits, trimap), rel=1e-5)


def test_alpha_loss_whole_and_region_match_reference():
    pred, alpha, trimap = _case()
    weight = (trimap == 0.5).astype(np.float64)
    assert L.alpha_loss(_t(pred), _t(alpha)).item() == pytest.approx(ref_alpha(pred, alpha), rel=1e-5)
    got = L.alpha_loss(_t(pred), _t(alpha), L.transition_weight(_t(trimap))).item()
    assert got == pytest.approx(ref_alpha(pred, alpha, weight), rel=1e-5)


def test_laplacian_kernel_is_the_official_sum_of_gaussians():
    k = L.laplacian_kernel()[0, 0].double().numpy()
    np.testing.assert_allclose(k, ref_kernel(), rtol=1e-6)
    assert not np.allclose(k, np.outer(k.sum(0), k.sum(1)) / k.sum())  # not a separable Gaussian


@pytest.mark.parametrize("region", [False, True])
def test_laplacian_loss_matches_reference(region):
    pred, alpha, trimap = _case(2, 37, 45)  # odd sizes: avg-pool floors them
    weight = (trimap == 0.5).astype(np.float64) if region else None
    got = L.laplacian_loss(_t(pred), _t(alpha), L.transition_weight(_t(trimap)) if region else None).item()
    assert got == pytest.approx(ref_laplacian(pred, alpha, weight), rel=1e-4)


def test_laplacian_loss_refuses_tiny_mattes():
    with pytest.raises(InputError, match="at least 32"):
        L.laplacian_loss(torch.zeros(1, 1, 16, 64), torch.zeros(1, 1, 16, 64))


def test_composition_loss_matches_reference():
    pred, _, _ = _case(2, 11, 13)
    fg, bg, image = (RNG.random((2, 3, 11, 13)) for _ in range(3))
    comp = pred * fg + (1 - pred) * bg
    ref = np.sqrt((comp - image) ** 2 + 1e-12).sum() / pred.size
    assert L.composition_loss(_t(pred), _t(image), _t(fg), _t(bg)).item() == pytest.approx(ref, rel=1e-5)


def test_perfect_prediction_gives_near_zero_matting_losses():
    _, alpha, trimap = _case()
    a, t = _t(alpha), _t(trimap)
    assert L.alpha_loss(a, a).item() < 1e-5
    assert L.laplacian_loss(a, a, L.transition_weight(t)).item() == 0.0


def test_p3m_total_uses_the_official_weights():
    pred, alpha, trimap = _case(2, 32, 32)
    logits = _t(RNG.standard_normal((2, 3, 32, 32)))
    sides = [_t(RNG.standard_normal((2, 3, 32, 32))) for _ in range(3)]
    fg, bg = _t(RNG.random((2, 3, 32, 32))), _t(RNG.random((2, 3, 32, 32)))
    batch = {"alpha": _t(alpha), "trimap": _t(trimap), "image": fg * _t(alpha) + bg * (1 - _t(alpha)), "fg": fg, "bg": bg}
    local, fused = _t(pred), _t(np.clip(pred + 0.1, 0, 1))
    out = L.p3m_losses(logits, local, fused, sides, batch)
    ce = [ref_cross_entropy(x.numpy(), trimap) for x in [logits, *sides]]
    w = (trimap == 0.5).astype(np.float64)
    expected = (
        (3 * ce[0] + sum(ce[1:])) / 6
        + 2 * (ref_alpha(pred, alpha, w) + ref_laplacian(pred, alpha, w))
        + 3 * (ref_alpha(fused.numpy(), alpha) + ref_laplacian(fused.numpy(), alpha))
        + L.composition_loss(fused, batch["image"], fg, bg).item()
    )
    assert out["loss"].item() == pytest.approx(expected, rel=1e-4)
    assert set(out) == {"loss", "global", "local", "fusion", "composition"}
    doubled = L.p3m_losses(logits, local, fused, sides, batch, {"composition": 2.0})
    assert doubled["loss"].item() == pytest.approx(out["loss"].item() + out["composition"].item(), rel=1e-5)
    with pytest.raises(InputError, match="unknown loss weight"):
        L.p3m_losses(logits, local, fused, sides, batch, {"compositon": 1.0})
