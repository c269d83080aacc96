"""Face masks as in P3M section 3.2: landmark polygon, minus the transition area, feathered inside.

Step 2 of the paper draws a mask "along the cheek and eyebrow landmarks": the
polygon here runs along the jaw (points 0-16) and back along the eyebrows
(26-17). The paper's Figure 3 shows the mask reaching above the brows onto the
forehead, and the brows alone leave the forehead, a strong identity cue,
sharp. So the brow points are moved up, perpendicular to the eye line, by
``brow_raise`` times the eye distance (default 0.5: about the brow-to-hairline
gap on an adult face; hair there falls in the transition area and is kept).

Step 3 removes the transition area (0 < alpha < 1, or trimap == 128). The
blend weights are then feathered *inward* from the edge of what is left, so
they are 0 on and outside that edge: the feathering can never change a pixel
outside the mask or in the transition area.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError
from ..images import check_alpha, check_trimap, read_gray
from .landmarks import BROWS, JAW, LEFT_EYE, RIGHT_EYE, Face

# Ellipse inside a Haar box, relative to the box (fitted to dlib's landmark polygon
# on skimage's astronaut: a Haar frontal box spans brows to lips and hides chin and forehead).
_ELLIPSE = {"frontal": (0.50, 0.56, 0.50, 0.70), "profile": (0.50, 0.56, 0.42, 0.70), "unknown": (0.50, 0.50, 0.50, 0.50)}


def landmark_polygon(landmarks: np.ndarray, brow_raise: float = 0.5) -> np.ndarray:
    """The face outline: jaw 0→16 then eyebrows 26→17 raised by ``brow_raise`` × eye distance."""
    p = np.asarray(landmarks, dtype=np.float64)
    eye_axis = p[RIGHT_EYE].mean(0) - p[LEFT_EYE].mean(0)
    iod = float(np.linalg.norm(eye_axis))
    up = np.array([eye_axis[1], -eye_axis[0]]) / max(iod, 1e-6)  # perpendicular to the eyes, away from the chin
    brows = p[BROWS][::-1] + up * (brow_raise * iod)
    return np.concatenate([p[JAW], brows]).astype(np.float32)


def box_ellipse(face: Face) -> np.ndarray:
    """A face-shaped polygon (an ellipse) for a face known only by its box."""
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    fx, fy, ax, ay = _ELLIPSE.get(face.view, _ELLIPSE["unknown"])
    center = (int(round(x0 + fx * w)), int(round(y0 + fy * h)))
    axes = (max(1, int(round(ax * w))), max(1, int(round(ay * h))))
    return cv2.ellipse2Poly(center, axes, 0, 0, 360, 5).astype(np.float32)


def face_region(face: Face, shape: tuple[int, int], brow_raise: float = 0.5, given_mask: np.ndarray | None = None) -> np.ndarray:
    """Boolean H×W region of one face (step 2), before the transition area is removed."""
    if given_mask is not None and face.landmarks is None:
        x0, y0, x1, y1 = face.box
        region = np.zeros(shape, dtype=bool)
        region[y0:y1, x0:x1] = given_mask[y0:y1, x0:x1] > 0
        return region
    polygon = landmark_polygon(face.landmarks, brow_raise) if face.landmarks is not None else box_ellipse(face)
    canvas = np.zeros(shape, dtype=np.uint8)
    # 4 fractional bits: sub-pixel landmark positions are kept when the polygon is rasterised.
    cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def transition_area(shape: tuple[int, int], alpha=None, trimap=None) -> np.ndarray:
    """Boolean H×W: 0 < alpha < 1 or trimap == 128 (hair, semi-transparent pixels), else False."""
    area = np.zeros(shape, dtype=bool)
    if alpha is not None:
        a = check_alpha(alpha, shape)
        area |= (a > 0) & (a < 1)
    if trimap is not None:
        area |= check_trimap(trimap, shape) == 128
    return area


def load_face_mask(mask, shape: tuple[int, int], name: str = "face_mask") -> np.ndarray:
    """A given face mask (array or P3M-10k ``facemask`` PNG; nonzero = face) as boolean H×W."""
    if isinstance(mask, (str, bytes)) or hasattr(mask, "__fspath__"):
        mask = read_gray(mask)
    if not isinstance(mask, np.ndarray):
        raise InputError(f"{name} must be a path or an H×W array, got {type(mask).__name__}")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise InputError(f"{name} must have shape H×W (single channel), got {mask.shape}")
    if mask.shape != tuple(shape):
        raise InputError(f"{name} is {mask.shape[0]}×{mask.shape[1]} but the image is {shape[0]}×{shape[1]}; they must match")
    if mask.dtype.kind == "f" and not np.isfinite(mask).all():
        raise InputError(f"{name} contains NaN or infinite values")
    if mask.dtype.kind not in "biuf":
        raise InputError(f"{name} must be boolean or numeric (0 = keep, nonzero = face), got dtype {mask.dtype}")
    return mask > 0


def feather_weights(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Blend weights in [0, 1]: 0 outside ``mask`` and rising to 1 over ``feather_px`` inside it.

    The weight is a smoothstep of the distance to the nearest pixel outside the
    mask, so the blurred face fades into the untouched surroundings with no
    visible seam, and every pixel outside the mask keeps weight exactly 0.
    """
    inside = mask.astype(np.uint8)
    if feather_px <= 0 or not inside.any():
        return inside.astype(np.float32)
    # A face cut by the image border goes on beyond it: replicate the border so
    # that it does not count as an edge to fade at.
    dist = cv2.distanceTransform(cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_REPLICATE), cv2.DIST_L2, 5)[1:-1, 1:-1]
    t = np.clip(dist / np.float32(feather_px), 0.0, 1.0)
    weights = t * t * (3.0 - 2.0 * t)
    weights[inside == 0] = 0.0
    return weights.astype(np.float32)
