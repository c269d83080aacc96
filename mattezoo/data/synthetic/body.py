"""Neck, shoulders, arms, legs and textured clothes, in proportion to the head.

Units are skull half widths, as for the head: a person is about 21 of them
tall (head 3, neck 0.5, torso 6, legs 11.5), shoulders about 2.6 to each
side. Half-body framings run the torso off the bottom of the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .canvas import Canvas, ellipse_points
from .face import HeadPose
from .identity import EYE_LINE, Identity

PATTERNS = ("plain", "stripes", "vstripes", "checks", "dots", "knit", "denim")


@dataclass(frozen=True)
class Outfit:
    pattern: str
    colour: np.ndarray
    second: np.ndarray
    period: float  # pattern period in skull half widths
    angle: float
    neckline: str  # "crew", "v", "round"
    sleeves: str  # "long", "short"
    lower: str  # "trousers", "skirt"
    lower_colour: np.ndarray


def _vivid(rng: np.random.Generator) -> np.ndarray:
    hue = rng.uniform(0, 6)
    sat, val = rng.uniform(0.2, 0.85), rng.uniform(0.25, 0.95)
    i, f = int(hue) % 6, hue - int(hue)
    p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
    rgb = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]
    return np.asarray(rgb, dtype=np.float32)


def make_outfit(rng: np.random.Generator) -> Outfit:
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    colour = _vivid(rng)
    second = np.clip(_vivid(rng) if rng.random() < 0.6 else colour * rng.uniform(0.4, 1.6), 0, 1).astype(np.float32)
    lower = np.asarray([(0.12, 0.14, 0.22), (0.2, 0.2, 0.2), (0.35, 0.3, 0.25), (0.22, 0.3, 0.45)][rng.integers(4)], dtype=np.float32)
    return Outfit(
        pattern=pattern,
        colour=colour,
        second=second,
        period=float(rng.uniform(0.18, 0.6)),
        angle=float(rng.uniform(-0.5, 0.5)),
        neckline=("crew", "v", "round")[int(rng.integers(3))],
        sleeves="long" if rng.random() < 0.6 else "short",
        lower="trousers" if rng.random() < 0.7 else "skirt",
        lower_colour=np.clip(lower * rng.uniform(0.7, 1.3), 0, 1).astype(np.float32),
    )


def cloth_field(roi, outfit: Outfit, x0: float, y0: float, scale: float, half_width: float, rng) -> np.ndarray:
    """Textured cloth colour over an ROI (planar 3×h×w): pattern, cylindrical shading and soft folds.

    Large areas compute the pattern and the shading on a half-resolution grid
    and upscale those two scalar fields: the pattern's period is several
    pixels, and the trigonometry is the costliest part of a body.
    """
    h, w = roi[1] - roi[0], roi[3] - roi[2]
    if h * w > 4096 and scale >= 8:
        half = (roi[0] / 2, roi[0] / 2 + (h + 1) // 2, roi[2] / 2, roi[2] / 2 + (w + 1) // 2)
        mix, shade = _cloth(half, outfit, x0 / 2 - 0.25, y0 / 2 - 0.25, scale / 2, half_width, rng)
        mix = cv2.resize(mix, (w, h), interpolation=cv2.INTER_LINEAR)
        shade = cv2.resize(shade, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        mix, shade = _cloth(roi, outfit, x0, y0, scale, half_width, rng)
    colour = outfit.colour[:, None, None] + (outfit.second - outfit.colour)[:, None, None] * mix
    colour *= shade
    return np.clip(colour, 0.0, 1.0, out=colour)


def _cloth(roi, outfit: Outfit, x0: float, y0: float, scale: float, half_width: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """The pattern's mix between the two colours and the shading, both h×w float32."""
    y0r, y1r, x0r, x1r = roi
    # Python floats keep the arithmetic in float32 (NumPy scalars would promote it to float64).
    x0, y0, scale = float(x0), float(y0), float(scale)
    u = (np.arange(x0r, x0r + (x1r - x0r), dtype=np.float32)[None, :] - x0) / scale
    v = (np.arange(y0r, y0r + (y1r - y0r), dtype=np.float32)[:, None] - y0) / scale
    u, v = np.broadcast_arrays(u, v)
    ca, sa = math.cos(outfit.angle), math.sin(outfit.angle)
    ur, vr = u * ca + v * sa, -u * sa + v * ca
    f = 2 * math.pi / outfit.period
    if outfit.pattern == "stripes":
        mix = 0.5 + 0.5 * np.tanh(4 * np.sin(f * vr))
    elif outfit.pattern == "vstripes":
        mix = 0.5 + 0.5 * np.tanh(4 * np.sin(f * ur))
    elif outfit.pattern == "checks":
        mix = 0.5 * (0.5 + 0.5 * np.tanh(3 * np.sin(f * ur))) + 0.5 * (0.5 + 0.5 * np.tanh(3 * np.sin(f * vr)))
    elif outfit.pattern == "dots":
        mix = np.clip(2.0 - 5.0 * np.hypot(np.mod(ur, outfit.period) / outfit.period - 0.5, np.mod(vr, outfit.period) / outfit.period - 0.5) * 2, 0, 1)
    elif outfit.pattern == "knit":
        mix = 0.5 + 0.25 * np.sin(3 * f * ur) * np.sin(3 * f * vr + np.sin(2 * f * ur))
    elif outfit.pattern == "denim":
        mix = 0.35 + 0.3 * np.sin(6 * f * (ur + vr)) ** 2
    else:
        mix = np.full(u.shape, 0.15, dtype=np.float32)
    cyl = 0.72 + 0.28 * np.sqrt(np.clip(1.0 - (u / float(half_width)) ** 2, 0.0, 1.0))
    p1, p2 = float(rng.uniform(0, 6.3)), float(rng.uniform(0, 6.3))
    folds = 1.0 + 0.06 * np.sin(4.0 * u + 1.3 * v + p1) * np.sin(0.9 * v + p2)
    return mix.astype(np.float32, copy=False), (cyl * folds).astype(np.float32, copy=False)


def _fill_with(canvas: Canvas, polygons, field_fn, pad: float = 2.0) -> None:
    pts = np.concatenate([np.asarray(p) for p in polygons])
    roi = canvas.roi(pts, pad)
    if roi is None:
        return
    cover = np.zeros((roi[1] - roi[0], roi[3] - roi[2]), dtype=np.float32)
    for poly in polygons:
        np.maximum(cover, canvas.fill(roi, [poly]), out=cover)
    canvas.over(roi, cover, field_fn(roi))


def draw_body(canvas: Canvas, ident: Identity, pose: HeadPose, full_body: bool, back_view: bool, rng: np.random.Generator) -> None:
    """Torso, arms, legs and neck under the head at ``pose`` (the head itself is drawn after)."""
    s = pose.scale
    outfit = make_outfit(rng)
    skin = np.asarray(ident.skin, dtype=np.float32)
    turn = abs(np.cos(min(max(pose.yaw * 0.7, -1.3), 1.3))) if not back_view else 1.0
    wf = 0.55 + 0.45 * turn
    xn = pose.cx + s * 0.12 * np.sin(pose.yaw if not back_view else 0.0)
    yb = pose.cy + s * (EYE_LINE + ident.chin + rng.uniform(0.3, 0.55))
    nw = s * rng.uniform(0.36, 0.45) * (0.85 + 0.15 * wf)
    W = s * rng.uniform(2.3, 2.9) * wf
    ysh = yb + 0.3 * s
    bottom = canvas.h + 4 * s
    y_hip = ysh + 6.0 * s if full_body else bottom
    waist = W * (0.72 if full_body else 1.02)

    def side(sign):
        return [
            (xn + sign * nw * 1.2, yb - 0.1 * s),
            (xn + sign * (nw * 1.2 + 0.4 * (W - nw)), yb + 0.05 * s),
            (xn + sign * W * 0.88, ysh + 0.1 * s),
            (xn + sign * W, ysh + 0.6 * s),
            (xn + sign * W * 1.02, ysh + 1.6 * s),
            (xn + sign * waist, y_hip),
        ]

    torso = np.array(side(-1) + side(1)[::-1])
    polys = [torso]
    arm_polys, hands = [], []
    if full_body:
        for sign in (-1, 1):
            sx = xn + sign * W * 0.93
            elbow = (sx + sign * 0.35 * s, ysh + 3.2 * s)
            wrist = (sx + sign * 0.25 * s, ysh + 5.6 * s)
            arm = np.array([(sx - 0.45 * s, ysh + 0.3 * s), (sx + 0.45 * s, ysh + 0.3 * s), (elbow[0] + 0.36 * s, elbow[1]), (wrist[0] + 0.25 * s, wrist[1]), (wrist[0] - 0.25 * s, wrist[1]), (elbow[0] - 0.36 * s, elbow[1])])
            (polys if outfit.sleeves == "long" else arm_polys).append(arm)
            hands.append(ellipse_points((wrist[0], wrist[1] + 0.35 * s), (0.26 * s, 0.38 * s), n=16))
        if outfit.sleeves == "short":
            polys += [np.array([(xn + sg * W * 0.93 - 0.5 * s, ysh + 0.2 * s), (xn + sg * W * 0.93 + 0.5 * s, ysh + 0.2 * s), (xn + sg * W * 0.93 + sg * 0.3 * s + 0.42 * s, ysh + 1.8 * s), (xn + sg * W * 0.93 + sg * 0.3 * s - 0.42 * s, ysh + 1.8 * s)]) for sg in (-1, 1)]
        y_feet = min(canvas.h - 1.0, y_hip + 11.0 * s)
        legs_poly = []
        if outfit.lower == "skirt":
            legs_poly.append(np.array([(xn - waist, y_hip - 0.3 * s), (xn + waist, y_hip - 0.3 * s), (xn + W * 1.05, y_hip + 5.0 * s), (xn - W * 1.05, y_hip + 5.0 * s)]))
            for sg in (-1, 1):
                arm_polys.append(np.array([(xn + sg * 0.15 * s, y_hip + 4.5 * s), (xn + sg * 0.75 * s, y_hip + 4.5 * s), (xn + sg * 0.6 * s, y_feet - 0.3 * s), (xn + sg * 0.25 * s, y_feet - 0.3 * s)]))
        else:
            for sg in (-1, 1):
                legs_poly.append(np.array([(xn + sg * 0.02 * s, y_hip - 0.3 * s), (xn + sg * waist, y_hip - 0.3 * s), (xn + sg * waist * 0.85, y_hip + 5.5 * s), (xn + sg * 0.85 * s, y_feet - 0.3 * s), (xn + sg * 0.15 * s, y_feet - 0.3 * s), (xn + sg * 0.1 * s, y_hip + 1.5 * s)]))
        shoes = [ellipse_points((xn + sg * 0.5 * s + sg * 0.1 * s, y_feet - 0.2 * s), (0.5 * s, 0.25 * s), n=16) for sg in (-1, 1)]

    if arm_polys or hands:
        _fill_with(canvas, arm_polys + hands, lambda roi: skin * 0.95)
    if full_body:
        lower = outfit.lower_colour
        bottoms = replace(outfit, pattern="denim" if outfit.lower == "trousers" else "plain", colour=lower, second=lower * 0.8, period=0.3, angle=0.0)
        _fill_with(canvas, legs_poly, lambda roi: cloth_field(roi, bottoms, xn, y_hip, s, waist / s, rng))
        _fill_with(canvas, shoes, lambda roi: np.array([0.08, 0.07, 0.07], dtype=np.float32))
    _fill_with(canvas, polys, lambda roi: cloth_field(roi, outfit, xn, yb, s, W / s, rng))
    if not full_body:
        # The creases where the arms meet the chest.
        for sg in (-1, 1):
            crease = np.array([(xn + sg * W * 0.8, ysh + 0.9 * s), (xn + sg * W * 0.76, min(bottom, ysh + 5 * s))])
            roi = canvas.roi(crease, pad=3)
            if roi is not None:
                canvas.over(roi, 0.3 * canvas.lines(roi, [crease], max(1, int(0.05 * s))), outfit.colour * 0.5)

    # Neck (and the skin a V or round neckline shows), over the collar.
    top = pose.cy + s * (EYE_LINE + 0.4)
    neck = [(xn - nw, top), (xn + nw, top), (xn + nw * 1.05, yb), (xn - nw * 1.05, yb)]
    if not back_view and outfit.neckline == "v":
        neck = neck[:3] + [(xn + nw * 0.9, yb + 0.05 * s), (xn, yb + 0.9 * s), (xn - nw * 0.9, yb + 0.05 * s)] + neck[3:]
    elif not back_view and outfit.neckline == "round":
        arc = ellipse_points((xn, yb), (nw * 1.5, 0.45 * s), n=20, start=0.0, stop=np.pi)
        neck = neck[:3] + [tuple(p) for p in arc] + neck[3:]
    neck = np.array(neck)

    def neck_field(roi):
        x, y = Canvas.grid(roi)
        shade = 0.78 + 0.14 * np.clip((y - top) / max(yb - top, 1.0), 0.0, 1.0)
        return np.clip(skin[:, None, None] * shade.astype(np.float32), 0, 1)  # planar 3×h×w

    _fill_with(canvas, [neck], neck_field)
