"""A 1080p portrait for the privacy benchmarks: skimage's astronaut enlarged onto a 1920×1080 frame."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data


def portrait_1080p() -> np.ndarray:
    """1920×1080 (W×H) RGB: the astronaut at 1080×1080 in the middle, her background mirrored out to the sides."""
    a = cv2.resize(data.astronaut(), (1080, 1080), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(a, 0, 0, 420, 420, cv2.BORDER_REFLECT)
