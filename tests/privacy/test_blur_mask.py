"""The blur against OpenCV's direct Gaussian, and the mask helpers against hand-made cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import face_photos as scenes

from mattezoo.errors import InputError
from mattezoo.privacy.blur import gaussian_blur, sigma_for_face
from mattezoo.privacy.mask import feather_weights, landmark_polygon, load_face_mask, transition_area


@pytest.mark.parametrize("sigma", [2.0, 9.0, 25.0, 60.0])
def test_fast_blur_matches_direct_gaussian(sigma):
    image = scenes.astronaut().astype(np.float32)
    fast = gaussian_blur(image, sigma)
    direct = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    m = int(3 * sigma)  # away from the borders, where padding rules differ
    err = np.abs(fast - direct)[m:-m, m:-m]
    assert fast.shape == image.shape and fast.dtype == np.float32
    assert err.mean() < 1.0 and err.max() < 6.0


def test_fast_blur_keeps_single_channel_and_odd_sizes():
    gray = scenes.astronaut()[:301, :197, 0].astype(np.float32)
    out = gaussian_blur(gray, 20.0)
    assert out.shape == gray.shape
    assert abs(float(out.mean()) - float(gray.mean())) < 2.0  # blur preserves the mean


def test_sigma_is_proportional_to_face_size():
    assert sigma_for_face(100, 0.2) == pytest.approx(20.0)
    assert sigma_for_face(300, 0.2) == pytest.approx(60.0)
    assert sigma_for_face(1, 0.2) == 1.0  # floor


def test_landmark_polygon_raises_the_brows():
    pts = np.zeros((68, 2), np.float32)
    pts[36:42] = (40, 50)
    pts[42:48] = (60, 50)  # eyes 20 px apart, level
    pts[17:27, 1] = 40
    pts[17:27, 0] = np.linspace(30, 70, 10)
    poly = landmark_polygon(pts, brow_raise=0.5)
    assert poly.shape == (27, 2)
    np.testing.assert_allclose(poly[17:, 1], 30.0)  # 40 - 0.5 * 20
    np.testing.assert_allclose(poly[17:, 0], np.linspace(70, 30, 10))  # brows walked back 26 -> 17


def test_transition_area_from_alpha_and_trimap():
    alpha = np.array([[0, 0.2, 1.0], [1.0, 0.999, 0]], np.float32)
    trimap = np.array([[0, 0, 128], [255, 255, 0]], np.uint8)
    np.testing.assert_array_equal(transition_area((2, 3), alpha=alpha), [[0, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(transition_area((2, 3), trimap=trimap), [[0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(transition_area((2, 3), alpha=alpha, trimap=trimap), [[0, 1, 1], [0, 1, 0]])
    u8 = (alpha * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(transition_area((2, 3), alpha=u8), [[0, 1, 0], [0, 0, 0]])  # 0.999 -> 255


def test_feather_weights_stay_inside_and_ramp_up():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    w = feather_weights(mask, 8.0)
    assert (w[~mask] == 0).all() and (w[mask] > 0).all()
    assert w[30, 30] == 1.0 and w[10, 30] < 0.1  # centre full, edge faint
    assert np.all(np.diff(w[30, 10:30]) >= 0)  # monotone from the edge inwards
    edge = np.zeros((20, 20), bool)
    edge[:, :10] = True  # a region cut by the image border: no fade at the border
    assert feather_weights(edge, 4.0)[10, 0] == 1.0


def test_load_face_mask_checks():
    assert load_face_mask(np.array([[0, 255], [1, 0]], np.uint8), (2, 2)).tolist() == [[False, True], [True, False]]
    with pytest.raises(InputError, match="single channel"):
        load_face_mask(np.zeros((2, 2, 3), np.uint8), (2, 2))
    with pytest.raises(InputError, match="NaN"):
        load_face_mask(np.full((2, 2), np.nan), (2, 2))
