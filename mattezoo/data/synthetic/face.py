"""Head geometry and drawing: the 68 iBUG landmarks in 3D, the skull, ears and facial features.

Landmarks follow the iBUG 68-point convention (jaw 0-16, brows 17-26, nose
27-35, eyes 36-47, mouth 48-67; point 0 and eye 36-41 on the image's left).
They are built in 3D head coordinates (identity.py units), turned by the
pose's yaw, projected orthographically, then rolled, scaled and moved into
the picture. The same projection places every feature that is drawn, so the
landmarks handed to the face blur are exactly where the face is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .canvas import Canvas, ellipse_points
from .identity import EYE_LINE, Identity

SKULL_C = 1.12  # skull depth semi-axis (front-back)


@dataclass(frozen=True)
class HeadPose:
    """Where the head is: skull centre ``(cx, cy)`` in px, px per unit, yaw and roll in radians."""

    cx: float
    cy: float
    scale: float
    yaw: float
    roll: float

    @property
    def shows_face(self) -> bool:
        return abs(self.yaw) < np.radians(95)

    def rotate(self, p3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Yaw-rotate N×3 head points: (N×2 projected, N depth towards the camera)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x = p3[..., 0] * c + p3[..., 2] * s
        z = -p3[..., 0] * s + p3[..., 2] * c
        return np.stack([x, p3[..., 1]], axis=-1), z

    def to_px(self, q: np.ndarray) -> np.ndarray:
        """Projected head-plane points (…×2) to pixels (roll, scale, move)."""
        c, s = math.cos(self.roll), math.sin(self.roll)
        x = q[..., 0] * c - q[..., 1] * s
        y = q[..., 0] * s + q[..., 1] * c
        return np.stack([self.cx + self.scale * x, self.cy + self.scale * y], axis=-1)

    def from_px(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel grids back to the projected head plane (inverse of :meth:`to_px`)."""
        # Python-float scalars: float32 grids stay float32.
        c, s = math.cos(self.roll), math.sin(self.roll)
        u, v = (x - self.cx) / self.scale, (y - self.cy) / self.scale
        return u * c + v * s, -u * s + v * c

    def project(self, p3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, z = self.rotate(p3)
        return self.to_px(q), z

    def facing(self, normals: np.ndarray) -> np.ndarray:
        """Cosine between each (unit) normal and the direction to the camera."""
        return self.rotate(normals)[1]


def _surface(fx: np.ndarray) -> np.ndarray:
    return 0.98 - 0.42 * fx**2


def _on_face(fx, fy, bump=0.0):
    fx, fy = np.asarray(fx, dtype=np.float64), np.asarray(fy, dtype=np.float64)
    z = _surface(fx) + bump
    return np.stack([fx, EYE_LINE + fy, z + 0 * fy], axis=-1)


# Constant points and shapes of draw_features.
_CHEEKS = {side: _on_face(side * 0.55, 0.55, 0.0)[None] for side in (-1, 1)}
_TAPER = np.linspace(0.55, 1.0, 5)  # brow thickness from the outer end in
_UP = np.array([0.0, -1.0])


@lru_cache(maxsize=4096)
def landmarks_3d(ident: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The 68 landmarks (68×3) and unit surface normals (68×3) of a face in head coordinates.

    Cached per identity; the arrays are read-only.
    """
    p, normals = _landmarks_3d(ident)
    p.setflags(write=False)
    normals.setflags(write=False)
    return p, normals


def _landmarks_3d(ident: Identity) -> tuple[np.ndarray, np.ndarray]:
    p = np.zeros((68, 3))
    # Jaw 0-16: from the image-left temple round the chin to the right.
    phi = np.linspace(-np.pi / 2, np.pi / 2, 17)
    sin_phi, cos_phi = np.sin(phi), np.cos(phi)
    p[0:17, 0] = ident.jaw_top * np.sign(phi) * np.abs(sin_phi) ** ident.jaw_q
    p[0:17, 1] = EYE_LINE + 0.05 + (ident.chin - 0.05) * cos_phi**0.85
    p[0:17, 2] = 0.05 + 0.8 * cos_phi
    # Points 17-67 lie on the face surface: collected as (x, y below the eye line, bump)
    # per feature, then lifted onto the surface in one go.
    # Brows 17-21 (outer to inner) and 22-26 (inner to outer).
    t = np.linspace(0.0, 1.0, 5)
    ew, sep = ident.eye_w, ident.eye_sep
    bx_left = -sep - 1.25 * ew + t * 2.3 * ew
    by_left = -ident.brow_h - ident.brow_arch * np.sin(np.pi * (0.15 + 0.75 * t)) + 0.03 * (1 - t)
    # Nose bridge 27-30 and base 31-35.
    nl, nw = ident.nose_len, ident.nose_w
    # Eyes 36-41 and 42-47.
    eh, tilt = ident.eye_h, ident.eye_tilt
    ex = np.array([-1.0, -0.35, 0.35, 1.0, 0.35, -0.35]) * ew
    ey = np.array([-tilt, -eh, -eh * 0.95, 0.0, eh * 0.8, eh * 0.8])
    mirror = [3, 2, 1, 0, 5, 4]
    # Mouth: outer 48-59, inner 60-67.
    mw, my, sm, op = ident.mouth_w, ident.mouth_y, ident.smile, ident.mouth_open
    ul, ll = ident.lip_up, ident.lip_low
    fx = np.concatenate([
        bx_left, -bx_left[::-1],
        np.zeros(4), np.linspace(-nw, nw, 5),
        -sep + ex, sep - ex[mirror],
        np.array([-1.0, -0.6, -0.25, 0.0, 0.25, 0.6, 1.0, 0.6, 0.3, 0.0, -0.3, -0.6]) * mw,
        np.array([-0.85, -0.3, 0.0, 0.3, 0.85, 0.3, 0.0, -0.3]) * mw,
    ])  # fmt: skip
    fy = np.concatenate([
        by_left, by_left[::-1],
        [-0.03, nl * 0.33, nl * 0.66, nl], nl + np.array([0.0, 0.06, 0.09, 0.06, 0.0]),
        ey, ey[mirror],
        my + np.array([-sm, -ul * 0.8, -ul, -ul * 0.8, -ul, -ul * 0.8, -sm, ll * 0.8, ll, ll, ll, ll * 0.8]),
        my + np.array([-sm * 0.9, -op / 2, -op / 2, -op / 2, -sm * 0.9, op / 2, op / 2, op / 2]),
    ])  # fmt: skip
    bump = np.concatenate([np.full(10, 0.05), [0.08, 0.15, 0.24, 0.34], [0.06, 0.13, 0.2, 0.13, 0.06], np.zeros(12), np.full(12, 0.05), np.full(8, 0.04)])
    p[17:, 0] = fx
    p[17:, 1] = EYE_LINE + fy
    p[17:, 2] = _surface(fx) + bump
    # Normals: the jaw's point outwards and a little down; the face's follow its surface.
    normals = np.empty((68, 3))
    normals[0:17] = np.stack([sin_phi, np.full(17, 0.25), cos_phi], axis=1)
    normals[17:, 0] = 0.84 * fx  # (the nose bridge has fx = 0)
    normals[17:, 1] = 0.0
    normals[17:, 2] = 1.0
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return p, normals


def skull_outline(ident: Identity, pose: HeadPose, volume: float = 1.0, n: int = 64) -> np.ndarray:
    """The skull's silhouette (an ellipse for any yaw) in pixels."""
    a = volume * np.hypot(np.cos(pose.yaw), SKULL_C * np.sin(pose.yaw))
    return pose.to_px(ellipse_points((0.0, 0.0), (a, volume * ident.head_b), n=n))


def _hull(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _mix(c1, c2, t: float) -> np.ndarray:
    return (1 - t) * np.asarray(c1, dtype=np.float32) + t * np.asarray(c2, dtype=np.float32)


def _draw_ears(canvas: Canvas, ident: Identity, pose: HeadPose, skin: np.ndarray) -> None:
    for side in (-1.0, 1.0):
        centre3 = np.array([[side * 0.97, EYE_LINE + 0.22, -0.12]])
        facing = pose.facing(np.array([[side, 0.0, -0.15]]))[0]
        if facing < -0.25:
            continue
        c2, _ = pose.rotate(centre3)
        width = (0.07 + 0.12 * max(0.0, facing)) * ident.ear_size
        height = 0.27 * ident.ear_size
        outline = pose.to_px(ellipse_points(c2[0], (width, height), n=24))
        roi = canvas.roi(outline)
        if roi is None:
            continue
        canvas.over(roi, canvas.fill(roi, [outline]), skin * np.array([0.93, 0.86, 0.84], dtype=np.float32))
        if facing > 0.35:
            inner = pose.to_px(ellipse_points(c2[0] + [0.01 * side, 0.02], (width * 0.5, height * 0.55), n=16))
            canvas.over(roi, 0.45 * canvas.fill(roi, [inner]), skin * 0.62)


def _skin_field(roi, ident: Identity, pose: HeadPose, skin: np.ndarray) -> np.ndarray:
    """Skin colour with soft 3D shading: lit towards the face centre and the light's side."""
    x, y = Canvas.grid(roi)
    qx, qy = pose.from_px(x, y)
    centre, _ = pose.rotate(np.array([0.0, EYE_LINE + 0.45, 0.7]))
    d = ((qx - centre[0]) / 1.05) ** 2 + ((qy - centre[1]) / 1.55) ** 2
    shade = 1.06 - 0.3 * np.clip(d, 0.0, 1.5) - 0.05 * qx
    return np.clip(skin[:, None, None] * shade.astype(np.float32), 0.0, 1.0)  # planar 3×h×w


def draw_head(canvas: Canvas, ident: Identity, pose: HeadPose, rng: np.random.Generator) -> np.ndarray:
    """Draw ears, skull, jaw and (when it faces the camera) the face; return the 68×2 px landmarks."""
    skin = np.asarray(ident.skin, dtype=np.float32)
    lm3, normals = landmarks_3d(ident)
    lm, _ = pose.project(lm3)
    vis = pose.facing(normals)
    _draw_ears(canvas, ident, pose, skin)

    skull = skull_outline(ident, pose)
    # Convex hulls: a turned jaw outline can cross itself, and an even-odd fill
    # would punch a hole into the cheek. The jaw is closed through the skull
    # centre, which the skull covers anyway; from behind it is the nape.
    parts = [skull, _hull(np.concatenate([lm[0:17], pose.to_px(np.zeros((1, 2)))]))]
    if pose.shows_face and abs(np.sin(pose.yaw)) > 0.3:
        foot, _ = pose.project(_on_face(0.0, ident.nose_len + 0.1, 0.0)[None])
        parts.append(_hull(np.concatenate([lm[[27, 30]], lm[33:34], foot])))
    roi = canvas.roi(np.concatenate(parts))
    if roi is None:
        return lm
    cover = np.zeros((roi[1] - roi[0], roi[3] - roi[2]), dtype=np.float32)
    for poly in parts:
        np.maximum(cover, canvas.fill(roi, [poly]), out=cover)
    canvas.over(roi, cover, _skin_field(roi, ident, pose, skin))
    if pose.shows_face:
        draw_features(canvas, ident, pose, lm, vis, skin, rng)
    return lm


def _visible(vis: np.ndarray, idx, threshold: float = 0.12) -> bool:
    return float(np.min(vis[idx])) > threshold


def draw_features(canvas: Canvas, ident: Identity, pose: HeadPose, lm: np.ndarray, vis: np.ndarray, skin: np.ndarray, rng) -> None:
    s = pose.scale
    line = max(1, int(round(0.028 * s)))
    hair = np.asarray(ident.hair.colour, dtype=np.float32)
    lip = np.asarray(ident.lip_colour, dtype=np.float32)
    dark = skin * 0.55

    tiny = s < 12  # a face a few pixels wide: skip details no pixel would show
    small = s < 28  # lower lids and lid creases are sub-pixel below this
    # Cheeks: a faint warm flush.
    for side, idx in ((-1, 2), (1, 14)):
        if tiny or vis[idx] < 0.0:
            continue
        c, _ = pose.project(_CHEEKS[side])
        outline = ellipse_points(c[0], (0.22 * s, 0.16 * s), n=20)
        roi = canvas.roi(outline)
        if roi is not None:
            x, y = Canvas.grid(roi)
            r2 = ((x - c[0, 0]) / (0.22 * s)) ** 2 + ((y - c[0, 1]) / (0.16 * s)) ** 2
            canvas.over(roi, 0.14 * np.clip(1 - r2, 0, 1) * canvas.A[roi[0] : roi[1], roi[2] : roi[3]], lip)

    # Beard before the mouth, so the lips sit on top of it.
    if ident.beard > 0 and _visible(vis, [8, 57], 0.0):
        above_lip = lm[[54, 35, 33, 31, 48]] + np.array([0.0, -0.02 * s])
        poly = np.concatenate([lm[3:14], above_lip])
        roi = canvas.roi(poly)
        if roi is not None:
            speckle = rng.random((roi[1] - roi[0], roi[3] - roi[2]), dtype=np.float32)
            cov = canvas.fill(roi, [poly]) * canvas.A[roi[0] : roi[1], roi[2] : roi[3]]
            canvas.over(roi, cov * ident.beard * (0.55 + 0.4 * speckle), hair * 0.9)

    # Eyes: sclera, iris and pupil clipped to the lids, a catch light, lid lines.
    for eye in (slice(36, 42), slice(42, 48)):
        if not _visible(vis, eye):
            continue
        pts = lm[eye]
        roi = canvas.roi(pts, pad=3)
        if roi is None:
            continue
        sclera = canvas.fill(roi, [pts])
        canvas.over(roi, sclera, np.array([0.93, 0.91, 0.88], dtype=np.float32))
        centre = np.array([pts[:, 0].mean(), pts[:, 1].mean()])
        eye_width = math.hypot(*(pts[3] - pts[0]).tolist())
        eye_height = math.hypot(*(pts[1] - pts[5]).tolist()) + 1e-6
        r = max(0.75, 0.5 * min(eye_width * 0.42, eye_height * 1.15))
        iris = canvas.fill(roi, [ellipse_points(centre, (r, r), n=20)]) * sclera
        canvas.over(roi, iris, np.asarray(ident.iris, dtype=np.float32))
        canvas.over(roi, canvas.fill(roi, [ellipse_points(centre, (0.45 * r, 0.45 * r), n=16)]) * sclera, np.array([0.03, 0.02, 0.02], dtype=np.float32))
        if tiny:
            continue
        glint = centre + np.array([-0.35 * r, -0.35 * r])
        canvas.over(roi, 0.8 * canvas.fill(roi, [ellipse_points(glint, (0.22 * r + 0.3, 0.22 * r + 0.3), n=10)]) * sclera, np.ones(3, dtype=np.float32))
        canvas.over(roi, canvas.lines(roi, [pts[[0, 1, 2, 3]]], line), np.array([0.08, 0.05, 0.05], dtype=np.float32))
        if small:
            continue
        canvas.over(roi, 0.35 * canvas.lines(roi, [pts[[3, 4, 5, 0]]], 1), dark)
        crease = pts[[0, 1, 2, 3]] + np.array([0.0, -0.55 * eye_height - 0.5])
        roi2 = canvas.roi(crease, pad=2)
        if roi2 is not None:
            canvas.over(roi2, 0.25 * canvas.lines(roi2, [crease], 1), dark)

    # Brows: a tapered band along the brow points.
    for brow, outer_first in ((slice(17, 22), True), (slice(22, 27), False)):
        if not _visible(vis, brow, 0.05):
            continue
        pts = lm[brow]
        taper = _TAPER if outer_first else _TAPER[::-1]
        half = 0.5 * ident.brow_thick * s * taper
        up = _UP
        band = np.concatenate([pts + up * half[:, None], (pts - up * half[:, None])[::-1]])
        roi = canvas.roi(band)
        if roi is not None:
            canvas.over(roi, 0.9 * canvas.fill(roi, [band]), _mix(hair, (0.05, 0.04, 0.03), 0.35))

    # Nose: a shadow down one side of the bridge, the base line and nostrils.
    if _visible(vis, [27, 30, 33], 0.0):
        side = -1.0 if pose.yaw >= 0 else 1.0
        bridge = lm[27:31] + np.array([side * 0.09 * s, 0.0])
        roi = canvas.roi(np.concatenate([bridge, lm[31:36]]), pad=3)
        if roi is not None:
            canvas.over(roi, 0.22 * canvas.lines(roi, [bridge], max(1, line)), dark)
            canvas.over(roi, 0.4 * canvas.lines(roi, [lm[31:36]], 1), dark)
            for a, b in ((31, 32), (34, 35)):
                if vis[a] > 0.1:
                    c = 0.5 * (lm[a] + lm[b])
                    canvas.over(roi, 0.75 * canvas.fill(roi, [ellipse_points(c, (0.05 * s + 0.3, 0.028 * s + 0.3), n=12)]), skin * 0.35)

    # Mouth: lips, the upper one darker, then the parting or an open mouth.
    if _visible(vis, [51, 57], 0.05):
        outer, inner = lm[48:60], lm[60:68]
        roi = canvas.roi(outer, pad=2)
        if roi is not None:
            canvas.over(roi, canvas.fill(roi, [outer]), lip)
            upper = np.concatenate([lm[48:55], lm[[64, 63, 62, 61, 60]]])
            canvas.over(roi, 0.5 * canvas.fill(roi, [upper]), lip * 0.7)
            if ident.mouth_open > 0.01:
                canvas.over(roi, canvas.fill(roi, [inner]), np.array([0.25, 0.07, 0.07], dtype=np.float32))
            else:
                canvas.over(roi, 0.7 * canvas.lines(roi, [lm[[48, 61, 62, 63, 54]]], 1), lip * 0.35)
