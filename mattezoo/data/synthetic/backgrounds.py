"""Backgrounds: procedural textures and the photographs scikit-image ships.

The photos are read from scikit-image's own data folder (found without
importing scikit-image). ``astronaut`` and ``camera`` are never used: they
show real faces, which would be unannotated faces in the picture. When
scikit-image is not installed, every background is procedural; each
environment is still deterministic.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

# Colour photographs with no people in them, and grey textures that get tinted.
COLOUR_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg")
GREY_TEXTURES = ("brick.png", "grass.png", "gravel.png")
PROCEDURAL = ("studio", "clouds", "bokeh", "bricks", "wallpaper", "foliage")


@lru_cache(maxsize=1)
def _data_dir() -> Path | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if folder.is_dir() else None


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray | None:
    folder = _data_dir()
    if folder is None or not (folder / name).is_file():
        return None
    img = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@lru_cache(maxsize=None)
def _photo_level(name: str, level: int) -> np.ndarray | None:
    """The photo halved ``level`` times (cached): crops of it resize cheaply to small outputs."""
    img = _photo(name)
    for _ in range(level):
        if img is None or min(img.shape[:2]) < 64:
            break
        img = cv2.pyrDown(img)
    return img


@lru_cache(maxsize=1)
def available_photos() -> tuple[str, ...]:
    """The photo and texture files this environment can use (may be empty)."""
    return tuple(n for n in COLOUR_PHOTOS + GREY_TEXTURES if _photo(n) is not None)


def _noise(rng, h: int, w: int, octaves: int = 4, base: int = 3) -> np.ndarray:
    """Smooth value noise in about [0, 1]: random grids upsampled and summed."""
    out = np.zeros((h, w), dtype=np.float32)
    total = 0.0
    for o in range(octaves):
        cells = base * 2**o
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        out += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * np.float32(0.5**o)
        total += 0.5**o
    out *= np.float32(1.0 / total)
    return np.clip(out, 0.0, 1.0, out=out)


def _palette(rng, n: int) -> np.ndarray:
    base = rng.uniform(0.1, 0.9, 3)
    return np.clip(base[None, :] + rng.normal(0.0, 0.22, (n, 3)), 0.02, 0.98).astype(np.float32)


# Procedural scenes are built planar (3×h×w): colours broadcast over the leading
# axis and every operation runs along image rows.
def _col(c) -> np.ndarray:
    return np.asarray(c, dtype=np.float32)[:, None, None]


def _lerp(c0, c1, t: np.ndarray) -> np.ndarray:
    """``c0·(1-t) + c1·t`` for colours c0, c1 (3,) and a field t (h×w): planar 3×h×w."""
    return _col(c0) + _col(np.asarray(c1) - np.asarray(c0)) * t


def procedural(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An H×W×3 float32 background in [0, 1] of the given kind (see ``PROCEDURAL``)."""
    return np.ascontiguousarray(_procedural(kind, h, w, rng).transpose(1, 2, 0))


def _procedural(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`procedural` as a planar 3×H×W array."""
    x = (np.arange(w, dtype=np.float32) / np.float32(max(w - 1, 1)))[None, :]
    y = (np.arange(h, dtype=np.float32) / np.float32(max(h - 1, 1)))[:, None]
    x, y = np.broadcast_arrays(x, y)
    c = _palette(rng, 4)
    if kind == "studio":
        cx, cy = rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.6)
        t = np.clip(np.hypot(x - np.float32(cx), (y - np.float32(cy)) * 0.8) * np.float32(rng.uniform(0.9, 1.6)), 0, 1)
        img = _lerp(c[0] * 1.1, c[1] * 0.6, t) + 0.03 * (_noise(rng, h, w, 2, 8) - 0.5)
    elif kind == "clouds":
        n1, n2 = _noise(rng, h, w), _noise(rng, h, w, 3, 2)
        img = _lerp(c[0], c[1], n1) * (0.7 + 0.5 * n2)
    elif kind == "bokeh":
        img = _lerp(c[0] * 0.5, c[1] * 0.5, y)
        layer = np.zeros((h, w, 3), dtype=np.float32)
        for _ in range(int(rng.integers(15, 40))):
            r = rng.uniform(0.02, 0.09) * min(h, w)
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            col = tuple(float(v) for v in np.clip(c[rng.integers(4)] * rng.uniform(0.8, 1.6), 0, 1))
            cv2.circle(layer, centre, int(r), col, -1, cv2.LINE_AA)
        sigma = 0.01 * min(h, w) + 0.5
        lights = np.stack(cv2.split(cv2.GaussianBlur(layer, (0, 0), sigma)))
        lights *= 0.9
        img = np.maximum(img, lights)
    elif kind == "bricks":
        rows = rng.integers(6, 16)
        bh = 1.0 / rows
        row = np.floor(y / bh)
        bw = bh * rng.uniform(1.8, 2.6) * h / max(w, 1)
        xs = x + (row % 2) * (bw / 2)
        col = np.floor(xs / bw)
        jitter = np.sin(row.astype(np.float64) * 12.9898 + col * 78.233) * 43758.5453
        jitter = (jitter - np.floor(jitter)).astype(np.float32)
        brick = _lerp(c[0], c[1] * 0.8, jitter)
        mortar = ((np.mod(y, bh) < bh * 0.08) | (np.mod(xs, bw) < bw * 0.04)).astype(np.float32)
        img = brick * (1 - mortar) + 0.8 * mortar * _col([0.75, 0.73, 0.7])
        img *= 0.85 + 0.3 * _noise(rng, h, w, 3, 6)
    elif kind == "wallpaper":
        f = rng.uniform(8, 30)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * f * x) * (0.6 + 0.4 * np.sin(2 * np.pi * f * 0.5 * y))
        img = _lerp(c[0], c[2], t.astype(np.float32) * 0.5) * (0.9 + 0.2 * _noise(rng, h, w, 2, 2))
    else:  # foliage
        green = np.array([rng.uniform(0.1, 0.35), rng.uniform(0.35, 0.65), rng.uniform(0.05, 0.3)], dtype=np.float32)
        img = _lerp(green * 0.4, green * 1.2, _noise(rng, h, w, 5, 4))
        layer = np.zeros((h, w), dtype=np.float32)
        for _ in range(int(rng.integers(40, 90))):
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            axes = (int(rng.uniform(0.01, 0.05) * w) + 1, int(rng.uniform(0.005, 0.02) * h) + 1)
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.3, 1.0)), -1, cv2.LINE_AA)
        img = img * (0.75 + 0.5 * cv2.GaussianBlur(layer, (0, 0), 1.0))
    return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)


def _to_u8(planar: np.ndarray) -> np.ndarray:
    """Planar float [0, 1] (3×h×w) to interleaved uint8 h×w×3."""
    q = planar * np.float32(255.0)
    np.rint(q, out=q)
    np.clip(q, 0, 255, out=q)
    return cv2.merge([p.astype(np.uint8) for p in q])


def photo(name: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray | None:
    """A random crop of a scikit-image photo, resized to H×W (uint8 RGB), or None if missing."""
    full = _photo(name)
    if full is None:
        return None
    ih, iw = full.shape[:2]
    aspect = w / h
    ch = int(ih * rng.uniform(0.45, 1.0))
    cw = min(iw, max(8, int(ch * aspect)))
    ch = min(ih, max(8, int(cw / aspect)))
    y0 = int(rng.integers(0, ih - ch + 1))
    x0 = int(rng.integers(0, iw - cw + 1))
    # Crop from the cached pyramid level that leaves a resize factor in [0.75, 1.5):
    # bilinear then neither aliases nor blurs, and costs a fraction of INTER_AREA.
    level = 0
    while level < 4 and ch / 2 ** (level + 1) >= 0.75 * h and cw / 2 ** (level + 1) >= 0.75 * w:
        level += 1
    img = _photo_level(name, level)
    sy, sx = img.shape[0] / ih, img.shape[1] / iw  # about 2**-level (pyrDown rounds sizes up)
    ly0, lx0 = min(int(y0 * sy), img.shape[0] - 1), min(int(x0 * sx), img.shape[1] - 1)
    crop = img[ly0 : ly0 + max(1, round(ch * sy)), lx0 : lx0 + max(1, round(cw * sx))]
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = cv2.flip(out, 1)
    if name in GREY_TEXTURES:
        tint = rng.uniform(0.4, 1.0, 3)
        out = cv2.transform(out, np.diag(tint / max(float(tint.max()), 1e-3)))
    return out


def make_background(h: int, w: int, rng: np.random.Generator, photo_p: float = 0.45) -> tuple[np.ndarray, str]:
    """A background (H×W×3 uint8 RGB) and its name; photos with probability ``photo_p``."""
    names = available_photos()
    use_photo = rng.random() < photo_p
    pick_photo = int(rng.integers(max(len(names), 1)))
    pick_kind = PROCEDURAL[int(rng.integers(len(PROCEDURAL)))]
    out, name = None, pick_kind
    if use_photo and names:
        name = names[pick_photo]
        out = photo(name, h, w, rng)
    if out is None:
        # Procedural scenes are smooth: drawing them at half size and upscaling is 4x cheaper.
        if min(h, w) >= 128:
            out = cv2.resize(_to_u8(_procedural(pick_kind, (h + 1) // 2, (w + 1) // 2, rng)), (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            out = _to_u8(_procedural(pick_kind, h, w, rng))
    if rng.random() < 0.4:  # depth of field: the person is in focus, the scene is not
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 2.5) * min(h, w) / 256)
    return out, name
