"""Composites with exact ground truth for testing matting: I = alpha F + (1 - alpha) B.

F and B are real photographs shipped with scikit-image. The matte is drawn,
not estimated: a smooth blob with a softly blurred rim plus thin hair-like
strands of partial opacity, rendered at 4x and area-averaged down, so its
0 < alpha < 1 band has genuine fractional structure. The trimap marks that
band, dilated, as unknown. Everything is deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import skimage.data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Composite:
    image: np.ndarray  # H×W×3 float64 in [0,1]
    alpha: np.ndarray  # H×W float64 in [0,1]
    foreground: np.ndarray  # H×W×3 float64
    background: np.ndarray  # H×W×3 float64
    trimap: np.ndarray  # H×W uint8, 0/128/255


def photo(name: str, height: int, width: int) -> np.ndarray:
    """A scikit-image photo resized to ``height×width``, float64 RGB in [0,1]."""
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    interp = cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_CUBIC
    return np.clip(cv2.resize(img, (width, height), interpolation=interp).astype(np.float64) / 255.0, 0, 1)


def draw_matte(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A ground-truth matte with a soft rim and semi-transparent strands, float64 in [0,1]."""
    rng = np.random.default_rng(seed)
    s = SUPERSAMPLE
    hs, ws = height * s, width * s
    body = np.zeros((hs, ws), np.float32)
    centre = (int(ws * rng.uniform(0.4, 0.6)), int(hs * rng.uniform(0.45, 0.6)))
    axes = (int(ws * rng.uniform(0.2, 0.28)), int(hs * rng.uniform(0.25, 0.32)))
    cv2.ellipse(body, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
    # A soft (motion-blur like) rim: the blob's edge spans a few pixels.
    body = cv2.GaussianBlur(body, (0, 0), sigmaX=1.2 * s)
    strands = np.zeros((hs, ws), np.float32)
    for _ in range(int(rng.integers(25, 40))):
        angle = rng.uniform(0, 2 * np.pi)
        start = np.array([centre[0] + 0.9 * axes[0] * np.cos(angle), centre[1] + 0.9 * axes[1] * np.sin(angle)])
        direction = np.array([np.cos(angle), np.sin(angle)])
        length = rng.uniform(0.06, 0.14) * min(hs, ws)
        bend = rng.normal(0, 0.3) * length * np.array([-direction[1], direction[0]])
        t = np.linspace(0, 1, 24)[:, None]
        curve = start + t * length * direction + (t * (1 - t)) * 4 * bend  # quadratic bend
        layer = np.zeros_like(strands)
        cv2.polylines(layer, [np.round(curve).astype(np.int32)], False, float(rng.uniform(0.4, 0.9)), int(rng.integers(1, 4)), cv2.LINE_AA)
        strands = np.maximum(strands, layer)
    matte = 1 - (1 - np.clip(body, 0, 1)) * (1 - np.clip(strands, 0, 1))
    matte = cv2.resize(matte, (width, height), interpolation=cv2.INTER_AREA).astype(np.float64)
    matte[matte < 1e-3] = 0.0
    matte[matte > 1 - 1e-3] = 1.0
    return matte


def trimap_from_matte(alpha: np.ndarray, band: int) -> np.ndarray:
    """0/128/255 trimap: the fractional region of ``alpha`` dilated by ``band`` pixels is unknown."""
    fractional = ((alpha > 0) & (alpha < 1)).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    unknown = cv2.dilate(fractional, kernel) > 0
    trimap = np.where(alpha >= 0.5, 255, 0).astype(np.uint8)
    trimap[unknown] = 128
    return trimap


def make_composite(height: int, width: int, *, seed: int = 0, foreground: str = "astronaut", background: str = "coffee",
                   band: int | None = None) -> Composite:
    """A photo-over-photo composite with its exact matte, colours and a trimap."""
    alpha = draw_matte(height, width, seed)
    fg = photo(foreground, height, width)
    bg = photo(background, height, width)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    band = max(2, round(min(height, width) / 60)) if band is None else band
    return Composite(image=image, alpha=alpha, foreground=fg, background=bg, trimap=trimap_from_matte(alpha, band))


def sad(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Sum of absolute differences in thousands, as matting papers report it."""
    return float(np.abs(np.asarray(estimate, np.float64) - truth).sum() / 1000.0)
