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

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .canvas import SHIFT, Canvas, ellipse_points
from .face import SKULL_C, HeadPose
from .identity import Identity

BACK_OF_HEAD = 1.15  # hairline height at the nape (below the skull: the back is all hair)
GROUP_P = np.array([0.3, 0.45, 0.25])
GROUP_SHADE = np.array([0.55, 0.9, 1.3], dtype=np.float32)
GROUP_OPACITY = (0.95, 0.9, 0.72)


def hairline(phi: np.ndarray, front: float) -> np.ndarray:
    """Height of the hairline at azimuth ``phi`` (0 = the forehead, ±π = the nape)."""
    w = ((1.0 - np.cos(phi)) * 0.5) ** 0.85
    return front + (BACK_OF_HEAD - front) * w


@dataclass
class Strands:
    """Every hair strand of one photo, as polylines in pixels.

    Strands on the face side (``short``) end where they reach the hairline;
    the others add ``K - ks`` freely falling points. Coordinates are kept
    point-major (K×N float32 planes: reductions and running sums over a
    strand's points then run along contiguous rows), and once more in
    OpenCV's fixed point (N×K×2 int32), so drawing does no conversion.
    """

    x: np.ndarray  # K×N pixel x
    y: np.ndarray  # K×N pixel y
    fixed: np.ndarray  # N×K×2 int32, x and y times 2**SHIFT
    lo: np.ndarray  # N×2 per-strand minimum (x, y) of the drawn points
    hi: np.ndarray  # N×2 per-strand maximum (x, y) of the drawn points
    front: np.ndarray  # N bool: root faces the camera
    group: np.ndarray  # N int colour group
    ks: int  # points per strand on the skull; the rest fall freely
    short: np.ndarray  # N bool: no free fall (only the first ks points are drawn)
    falls: np.ndarray  # N bool: a long strand falling below the head
    flyaway: np.ndarray  # N bool: a strand straying from the silhouette

    @property
    def points(self) -> np.ndarray:
        """N×K×2 float pixel coordinates."""
        return np.stack([self.x.T, self.y.T], axis=-1)


_KEEPOUT = np.r_[0:17, 27:36]  # jaw and nose landmarks: the face's extent


def _face_keepout(lm: np.ndarray | None):
    if lm is None:
        return None
    pts = lm[_KEEPOUT]
    xs, ys = pts[:, 0], pts[:, 1]
    lx, hx, ly, hy = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    return ((lx + hx) / 2, (ly + hy) / 2), (max((hx - lx) / 2 * 1.02, 1.0), max((hy - ly) / 2 * 1.05, 1.0))


@lru_cache(maxsize=64)
def _pull(kf: int) -> tuple[np.ndarray, np.ndarray]:
    """Gravity's pull on the heading after 1..kf steps (kf×1): ``0.7**k`` (strands), ``0.85**k`` (flyaways)."""
    k = np.arange(1, kf + 1, dtype=np.float64)[:, None]
    return (0.7**k).astype(np.float32), (0.85**k).astype(np.float32)


_GROUP_CDF = np.cumsum(GROUP_P) / np.sum(GROUP_P)


def _f32(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float32)


def _running_sum(a: np.ndarray) -> np.ndarray:
    """In-place cumulative sum down the rows of a K×N array (twice as fast as np.cumsum(axis=0))."""
    for i in range(1, a.shape[0]):
        a[i] += a[i - 1]
    return a


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
    curl, wavelength = float(style.curl), float(style.wavelength)

    # Per-strand draws (N, float64 from the generator, float32 from here on).
    phi0 = rng.uniform(-np.pi, np.pi, n)
    y_root = _f32(-B * rng.uniform(0.55, 0.97, n))
    flyaway = rng.random(n) < style.flyaway
    front_sector = np.abs(phi0) < 1.05
    fringe = (np.abs(phi0) < 0.75) * style.fringe
    line = hairline(phi0, style.hairline)
    y_end = _f32(np.where(front_sector, line + fringe, np.minimum(line, 0.5)))
    y_end = np.maximum(y_end, y_root + np.float32(0.05))
    phi0 = _f32(phi0)

    # The run over the skull: ks×N, point-major.
    run = np.linspace(0.0, 1.0, ks, dtype=np.float32)[:, None] * (y_end - y_root)
    y = y_root + run
    phase = _f32(rng.uniform(0, 2 * np.pi, n))
    phi = np.sin(run * np.float32(2 * np.pi / wavelength) + phase)
    phi *= np.float32(0.5 * curl)
    phi += phi0
    # Strands lie on a shell a little outside the cap, so the silhouette is made of strands;
    # flyaways stand further off.
    lift = _f32(np.where(flyaway, rng.uniform(1.08, 1.3, n), rng.uniform(0.96, 1.08, n)))
    r = y * np.float32(1.0 / B)
    r *= r
    np.subtract(1.0, r, out=r)
    np.clip(r, 0.02, 1.0, out=r)
    np.sqrt(r, out=r)
    r *= lift
    hx = np.sin(phi)
    hx *= r
    hx *= np.float32(A)
    hz = np.cos(phi)
    hz *= r
    hz *= np.float32(C)
    cyaw, syaw = math.cos(pose.yaw), math.sin(pose.yaw)
    qx = hx * np.float32(cyaw) + hz * np.float32(syaw)  # the yaw rotation of pose.rotate, x only
    front = (hz[0] * cyaw - hx[0] * syaw) > 0.0  # the root's depth towards the camera

    # Free fall from the end of the surface run, bending towards gravity and fanning out.
    length = np.where(front_sector, 0.0, style.length * rng.uniform(0.6, 1.0, n))
    length = np.where(flyaway & ~front_sector, length + rng.uniform(0.1, 0.4, n), length)
    step = _f32(length / kf)
    dx, dy = qx[-1] - qx[-2], y[-1] - y[-2]
    norm = np.maximum(np.hypot(dx, dy), np.float32(1e-6))
    dx = dx / norm + np.sign(qx[-1]) * _f32(rng.uniform(0.0, 0.35, n))
    dy = dy / norm
    # The heading turns towards straight down by a fixed fraction per step (gravity),
    # plus a random walk (strong for flyaways); closed form, no loop over steps.
    heading0 = np.arctan2(dy, dx)
    offset = np.mod(heading0 + np.float32(np.pi / 2), np.float32(2 * np.pi)) - np.float32(np.pi)
    pull_strand, pull_flyaway = _pull(kf)
    walk = rng.standard_normal((kf, n), dtype=np.float32)
    walk *= np.where(flyaway, np.float32(0.12), np.float32(0.02))
    heading = _running_sum(walk)
    heading += np.where(flyaway, pull_flyaway, pull_strand) * offset
    heading += np.float32(np.pi / 2)
    fx = np.cos(heading)
    fx *= step
    _running_sum(fx)
    fx += qx[-1]
    fy = np.sin(heading)
    fy *= step
    _running_sum(fy)
    fy += y[-1]
    arc = np.arange(1, kf + 1, dtype=np.float32)[:, None] * step
    wave = np.sin(arc * np.float32(2 * np.pi / wavelength) + phase)
    arc *= np.float32(-1 / 0.3)
    np.exp(arc, out=arc)
    np.subtract(1.0, arc, out=arc)
    wave *= arc
    wave *= np.float32(curl)
    fx += wave

    # Head plane to pixels (pose.to_px on separate x and y planes), K×N.
    hxp = np.concatenate([qx, fx], axis=0)
    hyp = np.concatenate([y, fy], axis=0)
    cr, sr, s = math.cos(pose.roll), math.sin(pose.roll), float(pose.scale)
    px = hxp * np.float32(s * cr)
    px -= hyp * np.float32(s * sr)
    px += np.float32(pose.cx)
    py = hxp * np.float32(s * sr)
    py += hyp * np.float32(s * cr)
    py += np.float32(pose.cy)

    keepout = _face_keepout(landmarks_px) if pose.shows_face else None
    if keepout is not None:
        (cx, cy), (ax, ay) = keepout
        fpx, fpy = px[ks:], py[ks:]
        ny = (fpy - np.float32(cy)) * np.float32(1 / ay)
        np.clip(ny, -1.0, 1.0, out=ny)
        ny *= ny
        np.subtract(1.0, ny, out=ny)
        half = np.sqrt(ny, out=ny)
        half *= np.float32(ax)
        inside = np.abs(fpx - np.float32(cx)) < half
        inside &= front
        # Push to the side the strand starts falling on, so no segment can cross the face.
        side = np.where(px[ks - 1] < cx, np.float32(-1.0), np.float32(1.0))
        np.copyto(fpx, half * side + np.float32(cx), where=inside)

    # rng.choice(3, p=GROUP_P) without its per-call checks (same draws, same groups).
    group = np.searchsorted(_GROUP_CDF, rng.random(n), side="right")
    group[flyaway] = 2
    fixed = np.empty((n, px.shape[0], 2), dtype=np.int32)
    fixed[..., 0] = np.rint(px * np.float32(1 << SHIFT)).T
    fixed[..., 1] = np.rint(py * np.float32(1 << SHIFT)).T
    short = length <= 0.0
    # Bounds of the drawn points only (a short strand's unused tail may have been pushed aside).
    lo = np.stack([np.where(short, px[:ks].min(axis=0), px.min(axis=0)), np.where(short, py[:ks].min(axis=0), py.min(axis=0))], axis=1)
    hi = np.stack([np.where(short, px[:ks].max(axis=0), px.max(axis=0)), np.where(short, py[:ks].max(axis=0), py.max(axis=0))], axis=1)
    return Strands(
        x=px, y=py, fixed=fixed, lo=lo, hi=hi, front=front, group=group, ks=ks, short=short,
        falls=~front_sector & ~flyaway & (length > 0.6), flyaway=flyaway,
    )


def _median(v: np.ndarray) -> float:
    m = v.size
    part = np.partition(v, [(m - 1) // 2, m // 2])
    return 0.5 * (float(part[(m - 1) // 2]) + float(part[m // 2]))


def _curtains(strands: Strands, front: bool) -> list[np.ndarray]:
    """Opaque polygons under long falling hair, one per side: the inner half of the strands' spread."""
    polys = []
    sel = (strands.front == front) & strands.falls
    if np.count_nonzero(sel) < 12:
        return polys
    ks = strands.ks
    xs_all, ys_all = strands.x[ks - 2 :, sel], strands.y[ks - 2 :, sel]
    centre_x = _median(strands.x[0])
    k = max(2, int(xs_all.shape[0] * 0.8))
    for side in (-1, 1):
        pick = np.sign(xs_all[0] - centre_x) == side
        m = int(np.count_nonzero(pick))
        if m < 6:
            continue
        # Per point along the strands: the 20% and 80% x and the median y of this side.
        xs = np.partition(xs_all[:k, pick], [int(0.2 * (m - 1)), int(0.8 * (m - 1))], axis=1)
        ys = np.partition(ys_all[:k, pick], m // 2, axis=1)
        lo, hi, y = xs[:, int(0.2 * (m - 1))], xs[:, int(0.8 * (m - 1))], ys[:, m // 2]
        polys.append(np.concatenate([np.stack([lo, y], 1), np.stack([hi, y], 1)[::-1]]).astype(np.float64))
    return polys


def draw_strands(canvas: Canvas, ident: Identity, strands: Strands, front: bool, scale: float) -> None:
    """Draw the strands on one side of the head (``front``: those over the face side), with their curtains."""
    colour = np.asarray(ident.hair.colour, dtype=np.float32)
    thickness = 1 if scale < 70 else 2
    curtains = _curtains(strands, front)
    if curtains:
        roi = canvas.roi(np.concatenate(curtains))
        if roi is not None:
            cover = canvas.fill(roi, curtains[:1])
            for poly in curtains[1:]:
                np.maximum(cover, canvas.fill(roi, [poly]), out=cover)
            canvas.over(roi, cover, colour * GROUP_SHADE[0])
    side = strands.front == front
    if not front:
        side &= strands.falls | strands.flyaway  # short strands behind the skull never show
    sel = np.flatnonzero(side)
    if sel.size == 0:
        return
    lo, hi = strands.lo[sel], strands.hi[sel]
    roi = canvas.roi_bounds(float(lo[:, 0].min()), float(lo[:, 1].min()), float(hi[:, 0].max()), float(hi[:, 1].max()), pad=3)
    if roi is None:
        return
    # One anti-aliased mask per shade group (one polylines call per run length). The
    # three shades are then put "over" each other on the covered pixels only and blended
    # in once (measured: faster than the same compositing done densely over the ROI).
    origin = np.array([roi[2] << SHIFT, roi[0] << SHIFT], dtype=np.int32)
    masks, colours = [], []
    groups, short = strands.group[sel], strands.short[sel]
    for g in range(3):
        in_group = groups == g
        if not in_group.any():
            continue
        mask = canvas.lines_fixed_u8(roi, strands.fixed[sel[in_group & ~short]], thickness)
        tops = sel[in_group & short]
        if tops.size:
            cv2.polylines(mask, strands.fixed[tops, : strands.ks] - origin, False, 255, thickness=thickness, lineType=cv2.LINE_AA, shift=SHIFT)
        masks.append(mask)
        colours.append((np.float32(GROUP_OPACITY[g] / 255.0), np.clip(colour * GROUP_SHADE[g] + 0.03 * g, 0.0, 1.0)[:, None]))
    union = masks[0].copy()
    for m in masks[1:]:
        np.bitwise_or(union, m, out=union)
    flat = np.flatnonzero(union)
    alpha = np.zeros(flat.size, dtype=np.float32)
    premult = np.zeros((3, flat.size), dtype=np.float32)
    for m, (opacity, c) in zip(masks, colours):
        a = np.take(m.reshape(-1), flat) * opacity
        keep = 1.0 - a
        premult *= keep
        premult += c * a
        alpha *= keep
        alpha += a
    canvas.over_sparse(roi, flat, alpha, premult)


def draw_cap(canvas: Canvas, ident: Identity, pose: HeadPose, rng: np.random.Generator) -> None:
    """The hair shell: the visible part of a slightly enlarged skull above the hairline."""
    style = ident.hair
    shell = 0.94 * style.volume  # strands (make_strands) lie on and just outside it
    A, B, C = shell, shell * ident.head_b, shell * SKULL_C
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    ap = math.hypot(A * c, C * s)
    roi = canvas.roi(pose.to_px(ellipse_points((0.0, 0.0), (ap, B), n=32)), pad=3)
    if roi is None:
        return
    x, y = Canvas.grid(roi)
    X, Y = pose.from_px(x, y)  # float32 (python-float scalars below keep it so)
    # Front-most point of the rotated ellipsoid under each pixel (orthographic ray along z).
    al, be, ga, de = c / A, -s / A, s / C, c / C
    R = 1.0 - (Y * (1.0 / B)) ** 2
    qa = be**2 + de**2
    qb = X * (2.0 * (al * be + ga * de))
    qc = X**2 * (al**2 + ga**2) - R
    disc = qb**2 - (4 * qa) * qc
    Z = (np.sqrt(np.maximum(disc, 0.0)) - qb) * (1.0 / (2 * qa))
    hx, hz = X * c - Z * s, X * s + Z * c
    phi = np.arctan2(hx, hz)
    rho = np.sqrt((X * (1.0 / ap)) ** 2 + (Y * (1.0 / B)) ** 2)
    px = float(pose.scale)
    # Hair thins out towards the silhouette: the cap fades over ~0.08 units (at least a pixel).
    fade = max(1.0, 0.08 * px)
    inside = np.clip((1.0 - rho) * (min(ap, B) * px / fade) + 0.5 / fade, 0.0, 1.0)
    soft = 1.0 + 0.05 * px  # the hairline is a little fuzzy, not a cut
    below_line = np.clip((hairline(phi, style.hairline) - Y) * (px / soft) + 0.5, 0.0, 1.0)
    alpha = inside * below_line
    p1, p2 = float(rng.uniform(0, 6.3)), float(rng.uniform(0, 6.3))
    streak = 0.5 + 0.5 * np.sin(38.0 * phi + 2.5 * np.sin(3.0 * Y + p1) + p2)
    shade = 0.62 + 0.38 * np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0))
    colour = np.asarray(style.colour, dtype=np.float32)
    field = colour[:, None, None] * ((0.72 + 0.35 * streak) * shade)  # planar 3×h×w
    canvas.over(roi, alpha, np.clip(field, 0.0, 1.0, out=field))
