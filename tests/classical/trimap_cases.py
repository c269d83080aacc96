"""Trimap edge cases shared by the tests of every classical method."""

import time

import numpy as np
import pytest

from composites import make_composite
from mattezoo.errors import InputError


def check_trimap_edge_cases(estimate):
    """``estimate(image, trimap) -> alpha`` must honour the trimap contract."""
    c = make_composite(24, 30, seed=5)
    image, trimap = c.image, c.trimap

    # No unknown pixel: the trimap is the matte, returned without any solve.
    known = np.where(trimap == 255, 255, 0).astype(np.uint8)
    start = time.perf_counter()
    alpha = estimate(image, known)
    assert time.perf_counter() - start < 0.5
    np.testing.assert_array_equal(alpha, known / 255.0)
    np.testing.assert_array_equal(estimate(image, np.zeros_like(trimap)), 0.0)  # all background is fine too

    no_fg = np.where(trimap == 255, 128, trimap).astype(np.uint8)
    with pytest.raises(InputError, match="no foreground"):
        estimate(image, no_fg)
    no_bg = np.where(trimap == 0, 128, trimap).astype(np.uint8)
    with pytest.raises(InputError, match="no background"):
        estimate(image, no_bg)

    odd = trimap.copy()
    odd[3, 4] = 100
    with pytest.raises(InputError, match=r"values other than 0 \(background\), 128 \(unknown\) and 255 \(foreground\): 100 \("):
        estimate(image, odd)
    with pytest.raises(InputError, match="outside"):
        estimate(image, trimap / 255.0 * 2)
    with pytest.raises(InputError, match="NaN"):
        estimate(image, np.full(trimap.shape, np.nan))
    with pytest.raises(InputError, match="dtype int32"):
        estimate(image, trimap.astype(np.int32))
    with pytest.raises(InputError, match="is 24×29 but the image is 24×30"):
        estimate(image, trimap[:, :-1])
    with pytest.raises(InputError, match="H×W×3"):
        estimate(image[..., :2], trimap)
    nan_image = image.copy()
    nan_image[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        estimate(nan_image, trimap)

    # The float encoding (0 / 0.5 / 1) gives the same matte as uint8.
    np.testing.assert_allclose(estimate(image, trimap / 255.0), estimate(image, trimap), atol=1e-6)
