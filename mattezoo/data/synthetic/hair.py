"""Hair: an opaque cap on the skull and many thin, anti-aliased strands that give real fractional alpha.

Strands start near the crown, run down the skull along meridians (so they
follow the head's shape in any view), and those on the sides and back then
fall freely under gravity with the style's length and curl. Strands whose
root faces the camera are drawn over the head; the others are drawn before
the body and head, which then hide what a real head would hide. Every strand
is a one-pixel anti-aliased line, so where strands thin out (tips, flyaways,
the silhouette) the matte takes every value between 0 and 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .canvas import Canvas, ellipse_points
from .face import SKULL_C, HeadPose
from .identity import Identity

BACK_OF_HEAD = 1.15  # hairline height at the nape (below the skull: the back is all hair)
GROUP_P = np.array([0.3, 0.45, 0.25])
GROUP_SHADE = np.array([0.55, 0.9, 1.3], dtype=np.float32)
GROUP_OPACITY = (0.95, 0.9, 0.72)


def hairline(phi: np.ndarray, front: float) -> np.ndarray:
    """Height of the hairline at azimuth ``phi`` (0 = the forehead, ±π = the nape)."""
    w = ((1.0 - np.cos(phi)) / 2.0) ** 0.85
    return front + (BACK_OF_HEAD - front) * w


@dataclass
class Strands:
    points: np.ndarray  # N×K×2 pixel coordinates
    front: np.ndarray  # N bool: root faces the camera
    group: np.ndarray  # N int colour group
    ks: int  # points per strand on the skull; the rest fall freely
    falls: np.ndarray  # N bool: a long strand falling below the head
    flyaway: np.ndarray  # N bool: a strand straying from the silhouette


def _face_keepout(lm: np.ndarray | None):
    if lm is None:
        return None
    pts = lm[np.r_[0:17, 27:36]]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return (lo + hi) / 2, np.maximum((hi - lo) / 2 * np.array([1.02, 1.05]), 1.0)


def make_strands(ident: Identity, pose: HeadPose, rng: np.random.Generator, landmarks_px: np.ndarray | None) -> Strands:
    style = ident.hair
    vol = style.volume
    A, B, C = vol, vol * ident.head_b, vol * SKULL_C
    size_factor = min(max(pose.scale / 40.0, 0.35), 1.6)
    long_hair = style.length > 1.0
    n = int(style.density * (380 + 720 * long_hair) * size_factor) + 40
    ks = 7
    # Enough points per free strand to draw its curls as curves, not zigzags.
    kf = min(max(int(np.ceil(style.length / style.wavelength * 6)), 6), 28) if style.curl > 0.06 else (12 if long_hair else 6)

    phi0 = rng.uniform(-np.pi, np.pi, n)
    y_root = -B * rng.uniform(0.55, 0.97, n)
    flyaway = rng.random(n) < style.flyaway
    front_sector = np.abs(phi0) < 1.05
    fringe = (np.abs(phi0) < 0.75) * style.fringe
    y_end = np.where(front_sector, hairline(phi0, style.hairline) + fringe, np.minimum(hairline(phi0, style.hairline), 0.5))
    y_end = np.maximum(y_end, y_root + 0.05)

    t = np.linspace(0.0, 1.0, ks)[None, :]
    y = y_root[:, None] + (y_end - y_root)[:, None] * t
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    phi = phi0[:, None] + 0.5 * style.curl * np.sin(2 * np.pi * (y - y_root[:, None]) / style.wavelength + phase)
    # Strands lie on a shell a little outside the cap, so the silhouette is made of strands;
    # flyaways stand further off.
    lift = np.where(flyaway, rng.uniform(1.08, 1.3, n), rng.uniform(0.96, 1.08, n))
    r = np.sqrt(np.clip(1.0 - (y / B) ** 2, 0.02, 1.0)) * lift[:, None]
    p3 = np.stack([A * r * np.sin(phi), y, C * r * np.cos(phi)], axis=-1)
    q, depth = pose.rotate(p3)
    front = depth[:, 0] > 0.0

    # Free fall from the end of the surface run, bending towards gravity and fanning out.
    length = np.where(front_sector, 0.0, style.length * rng.uniform(0.6, 1.0, n))
    length = np.where(flyaway & ~front_sector, length + rng.uniform(0.1, 0.4, n), length)
    step = (length / kf)[:, None]
    d = q[:, -1] - q[:, -2]
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    d[:, 0] += np.sign(q[:, -1, 0]) * rng.uniform(0.0, 0.35, n)
    # The heading turns towards straight down by a fixed fraction per step (gravity),
    # plus a random walk (strong for flyaways); closed form, no loop over steps.
    heading0 = np.arctan2(d[:, 1], d[:, 0])
    offset = np.mod(heading0 - np.pi / 2 + np.pi, 2 * np.pi) - np.pi
    pull = np.where(flyaway, 0.85, 0.7)[:, None] ** np.arange(1, kf + 1)[None, :]
    wander = np.cumsum(rng.normal(0.0, 1.0, (n, kf)) * np.where(flyaway, 0.12, 0.02)[:, None], axis=1)
    heading = np.pi / 2 + offset[:, None] * pull + wander
    free = q[:, -1][:, None, :] + np.cumsum(np.stack([np.cos(heading), np.sin(heading)], axis=-1) * step[..., None], axis=1)
    arc = step * np.arange(1, kf + 1)[None, :]
    free[..., 0] += style.curl * np.sin(2 * np.pi * arc / style.wavelength + phase) * (1 - np.exp(-arc / 0.3))
    pts = pose.to_px(np.concatenate([q, free], axis=1))

    keepout = _face_keepout(landmarks_px) if pose.shows_face else None
    if keepout is not None:
        (cx, cy), (ax, ay) = keepout
        fp = pts[:, ks:]
        ny = np.clip((fp[..., 1] - cy) / ay, -1.0, 1.0)
        half = ax * np.sqrt(1.0 - ny**2)
        inside = np.abs(fp[..., 0] - cx) < half
        # Push to the side the strand starts falling on, so no segment can cross the face.
        side = np.where(pts[:, ks - 1 : ks, 0] < cx, -1.0, 1.0)
        fp[..., 0] = np.where(inside & front[:, None], cx + side * half, fp[..., 0])

    group = rng.choice(3, size=n, p=GROUP_P)
    group[flyaway] = 2
    return Strands(points=pts, front=front, group=group, ks=ks, falls=~front_sector & ~flyaway & (length > 0.6), flyaway=flyaway)


def _curtains(strands: Strands, front: bool) -> list[np.ndarray]:
    """Opaque polygons under long falling hair, one per side: the inner half of the strands' spread."""
    polys = []
    sel = (strands.front == front) & strands.falls
    if sel.sum() < 12:
        return polys
    pts = strands.points[sel][:, strands.ks - 2 :]
    centre_x = np.median(strands.points[:, 0, 0])
    for side in (-1, 1):
        group = pts[np.sign(pts[:, 0, 0] - centre_x) == side]
        if len(group) < 6:
            continue
        k = max(2, int(group.shape[1] * 0.8))
        xs, ys = np.sort(group[:, :k, 0], axis=0), np.sort(group[:, :k, 1], axis=0)
        m = len(group)
        lo, hi, y = xs[int(0.2 * (m - 1))], xs[int(0.8 * (m - 1))], ys[m // 2]
        polys.append(np.concatenate([np.stack([lo, y], 1), np.stack([hi, y], 1)[::-1]]))
    return polys


def draw_strands(canvas: Canvas, ident: Identity, strands: Strands, front: bool, scale: float) -> None:
    colour = np.asarray(ident.hair.colour, dtype=np.float32)
    thickness = 1 if scale < 70 else 2
    curtains = _curtains(strands, front)
    if curtains:
        roi = canvas.roi(np.concatenate(curtains))
        if roi is not None:
            cover = np.zeros((roi[1] - roi[0], roi[3] - roi[2]), dtype=np.float32)
            for poly in curtains:
                np.maximum(cover, canvas.fill(roi, [poly]), out=cover)
            canvas.over(roi, cover, colour * GROUP_SHADE[0])
    # Strands cover a small part of their (large) ROI: the three shades are put
    # "over" each other on the covered pixels only, then blended in once.
    side = strands.front == front
    if not front:
        side &= strands.falls | strands.flyaway  # short strands behind the skull never show
    if not side.any():
        return
    roi = canvas.roi(strands.points[side], pad=3)
    if roi is None:
        return
    masks, colours = [], []
    for g in range(3):
        sel = side & (strands.group == g)
        if sel.any():
            masks.append(canvas.lines_u8(roi, strands.points[sel], thickness))
            colours.append((GROUP_OPACITY[g] / 255.0, np.clip(colour * GROUP_SHADE[g] + 0.03 * g, 0.0, 1.0)))
    union = masks[0].copy()
    for m in masks[1:]:
        np.maximum(union, m, out=union)
    flat = np.flatnonzero(union)
    alpha = np.zeros(flat.size, dtype=np.float32)
    premult = np.zeros((flat.size, 3), dtype=np.float32)
    for m, (opacity, c) in zip(masks, colours):
        a = m.ravel()[flat].astype(np.float32) * np.float32(opacity)
        keep = 1.0 - a
        premult *= keep[:, None]
        premult += a[:, None] * c
        alpha *= keep
        alpha += a
    canvas.over_sparse(roi, flat, alpha, premult)


def draw_cap(canvas: Canvas, ident: Identity, pose: HeadPose, rng: np.random.Generator) -> None:
    """The hair shell: the visible part of a slightly enlarged skull above the hairline."""
    style = ident.hair
    shell = 0.94 * style.volume  # strands (make_strands) lie on and just outside it
    A, B, C = shell, shell * ident.head_b, shell * SKULL_C
    c, s = np.cos(pose.yaw), np.sin(pose.yaw)
    ap = float(np.hypot(A * c, C * s))
    roi = canvas.roi(pose.to_px(ellipse_points((0.0, 0.0), (ap, B), n=32)), pad=3)
    if roi is None:
        return
    x, y = Canvas.grid(roi)
    X, Y = pose.from_px(x, y)
    # Front-most point of the rotated ellipsoid under each pixel (orthographic ray along z).
    al, be, ga, de = c / A, -s / A, s / C, c / C
    R = 1.0 - (Y / B) ** 2
    qa = be**2 + de**2
    qb = 2.0 * X * (al * be + ga * de)
    qc = X**2 * (al**2 + ga**2) - R
    disc = qb**2 - 4 * qa * qc
    Z = (-qb + np.sqrt(np.maximum(disc, 0.0))) / (2 * qa)
    hx, hz = X * c - Z * s, X * s + Z * c
    phi = np.arctan2(hx, hz)
    rho = np.sqrt((X / ap) ** 2 + (Y / B) ** 2)
    px = pose.scale
    # Hair thins out towards the silhouette: the cap fades over ~0.08 units (at least a pixel).
    fade = max(1.0, 0.08 * px)
    inside = np.clip((1.0 - rho) * min(ap, B) * px / fade + 0.5 / fade, 0.0, 1.0)
    soft = 1.0 + 0.05 * px  # the hairline is a little fuzzy, not a cut
    below_line = np.clip((hairline(phi, style.hairline) - Y) * px / soft + 0.5, 0.0, 1.0)
    alpha = (inside * below_line).astype(np.float32)
    streak = 0.5 + 0.5 * np.sin(38.0 * phi + 2.5 * np.sin(3.0 * Y + rng.uniform(0, 6.3)) + rng.uniform(0, 6.3))
    shade = 0.62 + 0.38 * np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0))
    colour = np.asarray(style.colour, dtype=np.float32)
    field = colour[None, None, :] * ((0.72 + 0.35 * streak) * shade)[..., None]
    canvas.over(roi, alpha, np.clip(field, 0.0, 1.0).astype(np.float32))
