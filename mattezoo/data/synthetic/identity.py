"""Identities: everything about a synthetic person that stays the same from photo to photo.

An identity is a seed. :func:`make_identity` turns it into face shape, skin,
eyes, brows, nose, mouth, ears, beard and hair style; the pose, clothes,
framing and background of each photo are drawn separately (generator.py), so
one identity can appear in many training images and the NP-like test split
can hold identities that training never saw.

Units: the skull's half width is 1, y points down, the skull centre is the
origin, and the eye line lies at ``EYE_LINE`` below it.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from functools import lru_cache

import numpy as np

EYE_LINE = 0.3

# Skin base colours (linear-ish sRGB in [0,1]) from very light to very dark.
SKIN_TONES = np.array(
    [
        (0.98, 0.86, 0.76), (0.95, 0.79, 0.67), (0.91, 0.73, 0.60), (0.87, 0.67, 0.52),
        (0.80, 0.60, 0.45), (0.72, 0.52, 0.38), (0.62, 0.42, 0.30), (0.52, 0.34, 0.24),
        (0.42, 0.27, 0.19), (0.33, 0.21, 0.15),
    ],
    dtype=np.float32,
)
HAIR_COLOURS = np.array(
    [
        (0.07, 0.06, 0.06), (0.13, 0.09, 0.07), (0.24, 0.15, 0.09), (0.38, 0.24, 0.14),
        (0.52, 0.26, 0.12), (0.62, 0.47, 0.28), (0.82, 0.69, 0.46), (0.66, 0.65, 0.62),
        (0.55, 0.18, 0.10), (0.30, 0.22, 0.18),
    ],
    dtype=np.float32,
)
IRIS_COLOURS = np.array(
    [(0.22, 0.12, 0.06), (0.35, 0.20, 0.09), (0.45, 0.35, 0.16), (0.27, 0.42, 0.30), (0.28, 0.45, 0.65), (0.45, 0.52, 0.58)],
    dtype=np.float32,
)
HAIR_KINDS = ("buzz", "short", "bob", "long", "curly")
_HAIR_KIND_CDF = np.cumsum([0.08, 0.3, 0.2, 0.3, 0.12]) / np.sum([0.08, 0.3, 0.2, 0.3, 0.12])


@dataclass(frozen=True)
class HairStyle:
    kind: str
    colour: tuple[float, float, float]
    volume: float  # the hair shell's size relative to the skull
    hairline: float  # y of the hairline on the forehead (negative = higher)
    fringe: float  # how far a fringe falls below the hairline (0 = none)
    length: float  # free length below the head, in skull half widths
    curl: float  # lateral wave amplitude of strands
    wavelength: float
    density: float  # relative number of strands
    flyaway: float  # fraction of strands that stray from the silhouette


@dataclass(frozen=True)
class Identity:
    key: int
    skin: tuple[float, float, float]
    head_b: float  # skull vertical semi-axis
    chin: float  # eye line to chin
    jaw_q: float  # jaw width exponent (<1: square jaw)
    jaw_top: float  # jaw half width at the eye line
    eye_sep: float
    eye_w: float
    eye_h: float
    eye_tilt: float
    iris: tuple[float, float, float]
    brow_h: float
    brow_thick: float
    brow_arch: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_up: float
    lip_low: float
    smile: float
    mouth_open: float
    lip_colour: tuple[float, float, float]
    ear_size: float
    beard: float  # 0 = clean shaven, up to 1 = full beard
    hair: HairStyle

    def vector(self) -> np.ndarray:
        """All numeric parameters as one vector (two identities are the same face iff equal)."""
        values = []
        for v in astuple(self)[1:]:
            if isinstance(v, tuple):
                values.extend(x for x in _flatten(v) if not isinstance(x, str))
            else:
                values.append(v)
        return np.asarray(values, dtype=np.float64)


def _flatten(v):
    for x in v:
        if isinstance(x, tuple):
            yield from _flatten(x)
        else:
            yield x


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> tuple[float, float, float]:
    noise = rng.normal(0.0, amount, 3).tolist()
    return tuple(min(max(float(c) * (1.0 + e), 0.0), 1.0) for c, e in zip(colour, noise))


def _pick(rng: np.random.Generator, p: np.ndarray) -> int:
    """``rng.choice(len(p), p=p)`` without its per-call checks: the same draw, the same pick."""
    return int(np.searchsorted(p, rng.random(), side="right"))


def make_hair(rng: np.random.Generator) -> HairStyle:
    kind = HAIR_KINDS[_pick(rng, _HAIR_KIND_CDF)]
    colour = _jitter(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 0.08)
    length = {"buzz": (0.0, 0.05), "short": (0.15, 0.5), "bob": (0.9, 1.6), "long": (2.5, 6.0), "curly": (0.6, 2.8)}[kind]
    curl = rng.uniform(0.08, 0.2) if kind == "curly" else rng.uniform(0.0, 0.05)
    return HairStyle(
        kind=kind,
        colour=colour,
        volume=float(rng.uniform(1.02, 1.06) if kind == "buzz" else rng.uniform(1.06, 1.2) + (0.08 if kind == "curly" else 0.0)),
        hairline=float(rng.uniform(-0.62, -0.38)),
        fringe=float(rng.uniform(0.15, 0.45)) if kind in ("bob", "long", "short") and rng.random() < 0.35 else 0.0,
        length=float(rng.uniform(*length)),
        curl=float(curl),
        wavelength=float(rng.uniform(0.25, 0.45) if kind == "curly" else rng.uniform(0.8, 2.0)),
        density=float(rng.uniform(0.8, 1.2)),
        flyaway=float(rng.uniform(0.06, 0.14)),
    )


@lru_cache(maxsize=4096)  # a train identity is drawn for several photos
def make_identity(key: int) -> Identity:
    """The face and hair of identity ``key`` (any non-negative int): a pure function of ``key``."""
    rng = np.random.default_rng(np.random.SeedSequence([0x1D, int(key)]))
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    eye_w = rng.uniform(0.16, 0.21)
    nose_len = rng.uniform(0.55, 0.72)
    chin = rng.uniform(1.35, 1.6)
    lip = np.clip(skin * np.array([0.85, 0.55, 0.55]) + np.array([0.08, 0.0, 0.02]), 0, 1)
    hair = make_hair(rng)
    return Identity(
        key=int(key),
        skin=_jitter(rng, skin, 0.04),
        head_b=float(rng.uniform(1.15, 1.28)),
        chin=float(chin),
        jaw_q=float(rng.uniform(0.7, 1.15)),
        jaw_top=float(rng.uniform(0.9, 0.97)),
        eye_sep=float(rng.uniform(0.38, 0.46)),
        eye_w=float(eye_w),
        eye_h=float(eye_w * rng.uniform(0.38, 0.55)),
        eye_tilt=float(rng.uniform(-0.03, 0.05)),
        iris=_jitter(rng, IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))], 0.1),
        brow_h=float(rng.uniform(0.2, 0.3)),
        brow_thick=float(rng.uniform(0.045, 0.09)),
        brow_arch=float(rng.uniform(0.02, 0.09)),
        nose_len=float(nose_len),
        nose_w=float(rng.uniform(0.17, 0.26)),
        mouth_y=float(min(nose_len + rng.uniform(0.3, 0.42), chin - 0.32)),
        mouth_w=float(rng.uniform(0.3, 0.42)),
        lip_up=float(rng.uniform(0.05, 0.09)),
        lip_low=float(rng.uniform(0.07, 0.13)),
        smile=float(rng.uniform(-0.02, 0.07)),
        mouth_open=float(rng.uniform(0.0, 0.06) if rng.random() < 0.4 else 0.0),
        lip_colour=_jitter(rng, lip, 0.05),
        ear_size=float(rng.uniform(0.85, 1.15)),
        beard=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.2 else 0.0,
        hair=hair,
    )
