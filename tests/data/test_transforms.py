"""Trimaps from alpha against scipy morphology, and the crop/flip/resize augmentation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from mattezoo.data import RandomCropResize, TrainAugment, random_trimap, trimap_from_alpha
from mattezoo.errors import InputError


def _alpha(h=64, w=80):
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    return np.clip((20 - r) / 6, 0, 1).astype(np.float32)  # opaque disc, soft rim, zero outside


def _reference(alpha, k):
    a = np.round(alpha * 255).astype(np.uint8)
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)).astype(bool)
    fg = ndimage.binary_erosion(a == 255, structure=se, border_value=1)
    maybe = ndimage.binary_dilation(a > 0, structure=se)
    return np.where(fg, 255, np.where(maybe, 128, 0)).astype(np.uint8)


@pytest.mark.parametrize("k", [3, 7, 15])
def test_trimap_matches_scipy(k):
    alpha = _alpha()
    t = trimap_from_alpha(alpha, k)
    np.testing.assert_array_equal(t, _reference(alpha, k))
    assert set(np.unique(t)) == {0, 128, 255}
    assert (alpha[t == 255] == 1).all() and (alpha[t == 0] == 0).all()
    assert ((alpha > 0) & (alpha < 1))[t != 128].sum() == 0  # every soft pixel is unknown


def test_random_trimap_uses_a_kernel_in_range():
    alpha = _alpha()
    rng = np.random.default_rng(3)
    for _ in range(5):
        t = random_trimap(alpha, rng, (5, 9))
        # Even kernels have an off-centre anchor, so compare with the function itself, per size.
        assert any(np.array_equal(t, trimap_from_alpha(alpha, k)) for k in range(5, 10))
        assert not np.array_equal(t, trimap_from_alpha(alpha, 3)) and not np.array_equal(t, trimap_from_alpha(alpha, 11))


def test_trimap_bad_input():
    with pytest.raises(InputError, match="kernel_size must be a positive integer"):
        trimap_from_alpha(_alpha(), 0)
    with pytest.raises(InputError, match="kernel_range"):
        random_trimap(_alpha(), np.random.default_rng(0), (9, 5))
    with pytest.raises(InputError, match="NaN"):
        trimap_from_alpha(np.full((4, 4), np.nan, np.float32), 3)


def test_crop_resize_keeps_arrays_aligned():
    h, w = 60, 90
    ramp = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    image = np.stack([ramp, ramp[::-1, ::-1], np.zeros_like(ramp)], -1)
    arrays = {"image": image, "alpha": ramp.astype(np.float32) / 255, "trimap": np.where(ramp > 128, 255, 0).astype(np.uint8)}
    crop = RandomCropResize(crop_sizes=(32, 48, 200), out_size=24)
    rng = np.random.default_rng(0)
    flips = set()
    for _ in range(12):
        y0, x0, side, flip = crop.params((h, w), np.random.default_rng(rng.integers(1 << 30)))
        assert side in (32, 48, 60) and 0 <= y0 <= h - side and 0 <= x0 <= w - side
        flips.add(flip)
        out = crop(arrays, rng)
        assert {k: v.shape[:2] for k, v in out.items()} == {k: (24, 24) for k in arrays}
        np.testing.assert_allclose(out["image"][..., 0] / 255.0, out["alpha"], atol=1.5 / 255)
        assert set(np.unique(out["trimap"])) <= {0, 255}
    assert flips == {True, False}


def test_crop_lands_on_the_transition_area():
    alpha = _alpha(200, 200)
    trimap = trimap_from_alpha(alpha, 3)
    crop = RandomCropResize(crop_sizes=(40,), out_size=40, transition_p=1.0)
    for seed in range(6):
        out = crop({"alpha": alpha, "trimap": trimap}, np.random.default_rng(seed))
        assert (out["trimap"] == 128).any()


def test_train_augment_adds_a_trimap():
    alpha = _alpha(100, 120)
    out = TrainAugment(crop_sizes=(64, 96), out_size=32, kernel_range=(3, 5))({"alpha": alpha, "image": np.zeros((100, 120, 3), np.uint8)}, np.random.default_rng(1))
    assert out["trimap"].shape == (32, 32) and set(np.unique(out["trimap"])) <= {0, 128, 255}
    with pytest.raises(InputError, match="needs an 'alpha'"):
        TrainAugment()({"image": np.zeros((4, 4, 3), np.uint8)}, np.random.default_rng(0))
    with pytest.raises(InputError, match="share height and width"):
        RandomCropResize((4,), 4)({"a": np.zeros((8, 8)), "b": np.zeros((8, 9))}, np.random.default_rng(0))
    with pytest.raises(InputError, match="must be positive"):
        RandomCropResize((0,), 4)
