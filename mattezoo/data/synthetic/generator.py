"""SyntheticP3M: deterministic synthetic portraits with normal and face-blurred twins.

Same seed, same pixels. Each sample is drawn part by part with the "over"
operator (canvas.py), so alpha and foreground are exact by construction and
the normal image is ``alpha·fg + (1-alpha)·bg`` up to uint8 rounding. The
blurred twin comes from one call to the real :func:`mattezoo.privacy.anonymize`
with the generator's exact 68 landmarks and alpha (back views have no face:
the twin equals the normal image).

Splits mirror P3M-10k. ``train`` reuses each identity in several photos;
``P3M-500-P`` (blurred faces) and ``P3M-500-NP`` (normal faces) hold one photo
per identity, and the three identity pools never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import InputError, choices_hint
from ..sample import Sample, check_index
from ..transforms import scaled_kernel, trimap_from_alpha
from .backgrounds import make_background
from .body import draw_body
from .canvas import Canvas
from .face import HeadPose, draw_head, landmarks_3d
from .hair import draw_cap, draw_strands, make_strands
from .identity import EYE_LINE, Identity, make_identity

SPLITS = ("train", "P3M-500-P", "P3M-500-NP")
SPLIT_TAGS = {"train": "train", "P3M-500-P": "p", "P3M-500-NP": "np"}
PRIMARY = {"train": "blurred", "P3M-500-P": "blurred", "P3M-500-NP": "normal"}
VIEWS = ("frontal", "three-quarter", "profile", "back")
VIEW_P = (0.45, 0.25, 0.15, 0.15)
_VIEW_CDF = np.cumsum(VIEW_P) / np.sum(VIEW_P)
_IDENTITY_BLOCK = 1_000_000  # identity keys of one (seed, split): block * (3·seed + split) + j


def canonical_split(split: str) -> str:
    """``"train"``, ``"P3M-500-P"`` or ``"P3M-500-NP"`` from any spelling ("p3m500p", "500-NP", ...)."""
    key = "".join(ch for ch in str(split).lower() if ch.isalnum())
    table = {"train": "train", "p3m500p": "P3M-500-P", "500p": "P3M-500-P", "p": "P3M-500-P", "p3m500np": "P3M-500-NP", "500np": "P3M-500-NP", "np": "P3M-500-NP"}
    if key not in table:
        raise InputError(f"unknown split {split!r}. {choices_hint(str(split), list(SPLITS), 'splits')}")
    return table[key]


def _size(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    else:
        try:
            h, w = (int(v) for v in size)
        except (TypeError, ValueError):
            raise InputError(f"size must be an int or (height, width), got {size!r}") from None
    if h < 32 or w < 32:
        raise InputError(f"size must be at least 32×32 pixels, got {h}×{w}")
    return h, w


@dataclass(eq=False)
class Portrait:
    """One rendered person over a background, before the face blur."""

    image: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    landmarks: np.ndarray | None  # 68×2 (x, y) px, None for back views
    view: str
    framing: str
    background: str
    pose: HeadPose


def sample_pose(ident: Identity, h: int, w: int, rng: np.random.Generator) -> tuple[HeadPose, str, str]:
    view = VIEWS[int(np.searchsorted(_VIEW_CDF, rng.random(), side="right"))]  # rng.choice(4, p=VIEW_P), unchecked
    side = 1.0 if rng.random() < 0.5 else -1.0
    yaw = {
        "frontal": rng.uniform(-20, 20),
        "three-quarter": side * rng.uniform(20, 42),
        "profile": side * rng.uniform(42, 62),
        "back": 180.0 + rng.uniform(-20, 20),
    }[view]
    roll = rng.uniform(-10, 10) * (0.5 if view == "back" else 1.0)
    framing = "full" if rng.random() < 0.3 else "half"
    top = ident.head_b * ident.hair.volume  # skull top above its centre
    if framing == "half":
        scale = min(h * rng.uniform(0.085, 0.13), w * 0.17)
        cy = rng.uniform(0.06 * h + top * scale, 0.42 * h)
    else:
        height = top + EYE_LINE + ident.chin + 0.45 + 0.3 + 6.0 + 11.0
        scale = h * rng.uniform(0.8, 0.93) / height
        cy = rng.uniform(0.02 * h, max(0.03 * h, h - height * scale - 0.02 * h)) + top * scale
    cx = w * rng.uniform(0.3, 0.7)
    pose = HeadPose(cx=float(cx), cy=float(cy), scale=float(scale), yaw=float(np.radians(yaw)), roll=float(np.radians(roll)))
    return pose, view, framing


def render_portrait(ident: Identity, size, rng: np.random.Generator) -> Portrait:
    """Draw one photo of ``ident``: background, back hair, body, head, hair cap, front hair."""
    h, w = _size(size)
    bg, bg_name = make_background(h, w, rng)
    pose, view, framing = sample_pose(ident, h, w, rng)
    lm3, _ = landmarks_3d(ident)
    landmarks = pose.project(lm3)[0] if pose.shows_face else None

    canvas = Canvas(h, w)
    strands = make_strands(ident, pose, rng, landmarks)
    draw_strands(canvas, ident, strands, front=False, scale=pose.scale)
    draw_body(canvas, ident, pose, framing == "full", view == "back", rng)
    draw_head(canvas, ident, pose, rng)
    draw_cap(canvas, ident, pose, rng)
    draw_strands(canvas, ident, strands, front=True, scale=pose.scale)

    alpha, fg = canvas.finish()
    # The composite is made from the quantised parts, so it matches them up to rounding.
    image = canvas.composite(alpha, fg, bg)
    return Portrait(image=image, alpha=alpha, fg=fg, bg=bg, landmarks=landmarks, view=view, framing=framing, background=bg_name, pose=pose)


def blur_twin(image: np.ndarray, alpha: np.ndarray, landmarks: np.ndarray | None, **options):
    """The face-blurred twin, made by the real P3M obfuscation with the exact landmarks."""
    from ...privacy import anonymize

    return anonymize(image, alpha=alpha, detector="given", landmarks=[] if landmarks is None else [landmarks], **options)


class SyntheticP3M(Sequence):
    """A deterministic synthetic P3M-10k-like split: ``SyntheticP3M("train", n=100, size=256, seed=0)``.

    Items are :class:`~mattezoo.data.Sample` records with both twins, alpha,
    trimap (fixed elliptical kernel, ``trimap_kernel`` or 3% of the short
    side), fg, bg and the face mask. ``per_identity`` photos share an identity
    (default 4 in train, 1 in the test splits). ``anonymize_options`` pass on
    to :func:`mattezoo.privacy.anonymize` (e.g. ``strength``).
    """

    def __init__(self, split: str = "train", n: int = 100, size=256, seed: int = 0, *, per_identity: int | None = None, trimap_kernel: int | None = None, anonymize_options: dict | None = None):
        self.split = canonical_split(split)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InputError(f"n must be a non-negative integer, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        self.n, self.size, self.seed = int(n), _size(size), int(seed)
        per = per_identity if per_identity is not None else (4 if self.split == "train" else 1)
        if isinstance(per, bool) or not isinstance(per, (int, np.integer)) or per < 1:
            raise InputError(f"per_identity must be a positive integer, got {per_identity!r}")
        self.per_identity = int(per)
        self.trimap_kernel = int(trimap_kernel) if trimap_kernel is not None else scaled_kernel(min(self.size))
        self.anonymize_options = dict(anonymize_options or {})

    def __repr__(self) -> str:
        return f"SyntheticP3M(split={self.split!r}, n={self.n}, size={self.size}, seed={self.seed}, per_identity={self.per_identity})"

    def __len__(self) -> int:
        return self.n

    def identity_key(self, index: int) -> int:
        j = self._index(index) // self.per_identity
        return _IDENTITY_BLOCK * (3 * self.seed + SPLITS.index(self.split)) + j

    def identity_name(self, index: int) -> str:
        return f"syn{self.seed}-{SPLIT_TAGS[self.split]}-id{self.identity_key(index) % _IDENTITY_BLOCK:06d}"

    def identities(self) -> dict[str, Identity]:
        """Every identity in the split, by name."""
        return {self.identity_name(i): make_identity(self.identity_key(i)) for i in range(0, self.n, self.per_identity)}

    def name(self, index: int) -> str:
        return f"syn{self.seed}_{SPLIT_TAGS[self.split]}_{self._index(index):05d}"

    def _index(self, index) -> int:
        return check_index(index, self.n)

    def render(self, index: int) -> Portrait:
        """The portrait of sample ``index`` before the face blur."""
        i = self._index(index)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, SPLITS.index(self.split), i]))
        return render_portrait(make_identity(self.identity_key(i)), self.size, rng)

    def __getitem__(self, index) -> Sample:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n))]
        p = self.render(index)
        twin = blur_twin(p.image, p.alpha, p.landmarks, **self.anonymize_options)
        return Sample(
            name=self.name(index),
            alpha=p.alpha,
            normal=p.image,
            blurred=twin.image,
            trimap=trimap_from_alpha(p.alpha, self.trimap_kernel),
            fg=p.fg,
            bg=p.bg,
            facemask=twin.mask,
            primary=PRIMARY[self.split],
            identity=self.identity_name(index),
            meta={
                "view": p.view,
                "framing": p.framing,
                "background": p.background,
                "landmarks": p.landmarks,
                "faces": len(twin.faces),
                "split": self.split,
            },
        )
