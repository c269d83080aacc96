"""Speed of P3M face obfuscation on a 1080p portrait, and of the fast large-sigma blur.

Each benchmark checks its result before timing. Run with ``--benchmark-enable``;
``python benchmarks/speed_privacy.py`` prints the same figures as plain numbers.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from privacy_scene import portrait_1080p

from mattezoo.privacy import anonymize, has_dlib
from mattezoo.privacy.blur import gaussian_blur

BACKENDS = [pytest.param("dlib68", marks=pytest.mark.skipif(not has_dlib(), reason="needs dlib")), "haar"]


@pytest.fixture(scope="module")
def portrait():
    return portrait_1080p()


@pytest.mark.benchmark(group="method:anonymize")
@pytest.mark.parametrize("backend", BACKENDS)
def test_anonymize_1080p(benchmark, portrait, backend):
    result = anonymize(portrait, detector=backend)
    assert len(result.faces) == 1 and result.mask.any()
    assert np.array_equal(result.image[result.mask == 0], portrait[result.mask == 0])
    benchmark.extra_info["pixels"] = portrait.shape[0] * portrait.shape[1]
    benchmark(anonymize, portrait, detector=backend)


@pytest.mark.benchmark(group="op:gaussian_blur")
@pytest.mark.parametrize("impl", ["fast", "cv2_direct"])
def test_blur_sigma40(benchmark, portrait, impl):
    window = portrait[:600, 700:1300].astype(np.float32)  # a face window at 1080p
    direct = lambda: cv2.GaussianBlur(window, (0, 0), 40.0, borderType=cv2.BORDER_REFLECT_101)  # noqa: E731
    fast = lambda: gaussian_blur(window, 40.0)  # noqa: E731
    assert np.abs(fast() - direct())[120:-120, 120:-120].mean() < 1.0
    benchmark(fast if impl == "fast" else direct)
