"""Trimaps from mattes and the training augmentations of P3M-Net.

Facts from the P3M code base (JizhiziLi/P3M, core/data.py, core/util.py): the
trimap is made online from the matte by dilating "alpha > 0" and eroding
"alpha == 255" with an elliptical kernel whose size is drawn from 15..30 for
each training sample; a square crop of a side drawn from {512, 768, 1024}
(whole-image side when the image is smaller), flipped half of the time,
resized to 512. Here the sizes are arguments, so CPU presets can train on
small crops, and the trimap is resized with nearest neighbour so that it keeps
its three values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..images import check_alpha

TRAIN_KERNEL_RANGE = (15, 30)
CROP_SIZES = (512, 768, 1024)
RESIZE_TO = 512
# Arrays resized with nearest neighbour (labels); everything else is bilinear.
NEAREST = frozenset({"trimap", "facemask"})


def _alpha_u8(alpha) -> np.ndarray:
    if isinstance(alpha, np.ndarray) and alpha.dtype == np.uint8 and alpha.ndim == 2:
        return alpha
    return np.round(check_alpha(alpha) * 255.0).astype(np.uint8)


def trimap_from_alpha(alpha, kernel_size: int) -> np.ndarray:
    """H×W uint8 trimap: 255 where eroded "alpha == 1", 0 outside dilated "alpha > 0", 128 between."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1:
        raise InputError(f"kernel_size must be a positive integer, got {kernel_size!r}")
    a = _alpha_u8(alpha)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(kernel_size), int(kernel_size)))
    known_fg = cv2.erode((a == 255).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    maybe_fg = cv2.dilate((a > 0).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    trimap = np.where(maybe_fg > 0, 128, 0).astype(np.uint8)
    trimap[known_fg > 0] = 255
    return trimap


def random_trimap(alpha, rng: np.random.Generator, kernel_range: tuple[int, int] = TRAIN_KERNEL_RANGE) -> np.ndarray:
    """A training trimap with a kernel size drawn uniformly from ``kernel_range`` (inclusive)."""
    lo, hi = (int(k) for k in kernel_range)
    if lo < 1 or hi < lo:
        raise InputError(f"kernel_range must be (low, high) with 1 <= low <= high, got {kernel_range!r}")
    return trimap_from_alpha(alpha, int(rng.integers(lo, hi + 1)))


def scaled_kernel(size: int, fraction: float = 0.03) -> int:
    """An odd kernel size for a fixed test trimap, as a fraction of the image side (at least 3)."""
    k = max(3, int(round(size * fraction)))
    return k | 1


class RandomCropResize:
    """P3M-Net's training crop: a square of a side drawn from ``crop_sizes``, flipped, resized.

    Call it with named H×W(×C) arrays (``image``/``normal``/``blurred``, ``alpha``,
    ``trimap``, ``fg``, ``bg``, ``facemask``...) that share H and W; it returns
    the same names, all ``out_size``×``out_size``. With probability
    ``transition_p`` the crop is centred on a random unknown pixel of ``trimap``
    (when given), so crops land on hair and edges as often as the seed's do.
    """

    def __init__(self, crop_sizes: Sequence[int] = CROP_SIZES, out_size: int = RESIZE_TO, flip_p: float = 0.5, transition_p: float = 0.5):
        sizes = tuple(int(c) for c in crop_sizes)
        if not sizes or min(sizes) < 1 or int(out_size) < 1:
            raise InputError(f"crop_sizes and out_size must be positive, got {crop_sizes!r} and {out_size!r}")
        if not (0.0 <= flip_p <= 1.0 and 0.0 <= transition_p <= 1.0):
            raise InputError(f"flip_p and transition_p must lie in [0, 1], got {flip_p!r} and {transition_p!r}")
        self.crop_sizes, self.out_size, self.flip_p, self.transition_p = sizes, int(out_size), float(flip_p), float(transition_p)

    def __repr__(self) -> str:
        return f"RandomCropResize(crop_sizes={self.crop_sizes}, out_size={self.out_size}, flip_p={self.flip_p}, transition_p={self.transition_p})"

    def params(self, shape: tuple[int, int], rng: np.random.Generator, trimap: np.ndarray | None = None) -> tuple[int, int, int, bool]:
        """``(y0, x0, side, flip)`` of one crop of an image of ``shape``."""
        h, w = shape
        side = int(self.crop_sizes[int(rng.integers(len(self.crop_sizes)))])
        side = min(side, h, w)  # an image smaller than the crop is cropped to its short side
        cy, cx = None, None
        if trimap is not None and rng.random() < self.transition_p:
            ys, xs = np.nonzero(trimap == 128)
            if len(ys):
                i = int(rng.integers(len(ys)))
                cy, cx = int(ys[i]), int(xs[i])
        if cy is None:
            y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        else:
            y0 = int(np.clip(cy - side // 2, 0, h - side))
            x0 = int(np.clip(cx - side // 2, 0, w - side))
        return y0, x0, side, bool(rng.random() < self.flip_p)

    def __call__(self, arrays: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        if not arrays:
            raise InputError("RandomCropResize needs at least one array")
        shapes = {k: tuple(v.shape[:2]) for k, v in arrays.items()}
        if len(set(shapes.values())) != 1:
            raise InputError(f"arrays to crop together must share height and width, got {shapes}")
        shape = next(iter(shapes.values()))
        y0, x0, side, flip = self.params(shape, rng, arrays.get("trimap"))
        out = {}
        for name, arr in arrays.items():
            crop = arr[y0 : y0 + side, x0 : x0 + side]
            if flip:
                crop = crop[:, ::-1]
            interp = cv2.INTER_NEAREST if name in NEAREST else cv2.INTER_LINEAR
            out[name] = cv2.resize(np.ascontiguousarray(crop), (self.out_size, self.out_size), interpolation=interp)
        return out


class TrainAugment:
    """The seed's training pipeline: a random-kernel trimap from the full matte, then crop/flip/resize.

    ``arrays`` must hold ``alpha`` (float32 H×W); the result adds ``trimap``.
    """

    def __init__(self, crop_sizes: Sequence[int] = CROP_SIZES, out_size: int = RESIZE_TO, kernel_range: tuple[int, int] = TRAIN_KERNEL_RANGE, flip_p: float = 0.5):
        self.crop = RandomCropResize(crop_sizes, out_size, flip_p)
        self.kernel_range = tuple(int(k) for k in kernel_range)

    def __repr__(self) -> str:
        return f"TrainAugment({self.crop!r}, kernel_range={self.kernel_range})"

    def __call__(self, arrays: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        if "alpha" not in arrays:
            raise InputError(f"TrainAugment needs an 'alpha' array; got {sorted(arrays)}")
        arrays = dict(arrays)
        arrays["trimap"] = random_trimap(arrays["alpha"], rng, self.kernel_range)
        return self.crop(arrays, rng)
