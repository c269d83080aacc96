"""The record every mattezoo data set returns: one portrait, its twins and its ground truth.

Arrays, all H×W (×3) with the same H and W:

``normal``   uint8 RGB, the face as taken (``None`` when the set has no normal image)
``blurred``  uint8 RGB, the face-blurred twin (``None`` when the set has none)
``alpha``    float32 in [0, 1], the matte
``trimap``   uint8 0 / 128 / 255, or ``None`` (training sets make them from alpha)
``fg``, ``bg``  uint8 RGB foreground and background, or ``None``
``facemask`` uint8 0 / 255, the obfuscated face region (P3M-10k ``facemask`` format), or ``None``

``primary`` names the image the split is about ("blurred" for P3M-10k train and
P3M-500-P, "normal" for P3M-500-NP); :attr:`Sample.image` returns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

KINDS = {"normal": "normal", "n": "normal", "blurred": "blurred", "b": "blurred"}


class SampleIndexError(InputError, IndexError):
    """A sample index outside the data set (an IndexError too, so iteration stops on it)."""


def check_index(index, n: int) -> int:
    """``index`` as a non-negative int below ``n`` (negative counts from the end), or a clear error."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise InputError(f"sample index must be an integer, got {type(index).__name__}")
    i = int(index) + (n if index < 0 else 0)
    if not 0 <= i < n:
        raise SampleIndexError(f"sample index {int(index)} is out of range for {n} samples (valid: 0..{n - 1} or -{n}..-1)" if n else "the data set is empty")
    return i


@dataclass(eq=False)
class Sample:
    name: str
    alpha: np.ndarray
    normal: np.ndarray | None = None
    blurred: np.ndarray | None = None
    trimap: np.ndarray | None = None
    fg: np.ndarray | None = None
    bg: np.ndarray | None = None
    facemask: np.ndarray | None = None
    primary: str = "normal"
    identity: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        """The split's own image: the blurred one for P3M-10k train / P3M-500-P, else the normal one."""
        return self.view(self.primary)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.alpha.shape[:2])

    def view(self, kind: str) -> np.ndarray:
        """The ``"normal"`` (``"N"``) or ``"blurred"`` (``"B"``) image, as the PPT protocols name them."""
        key = KINDS.get(str(kind).lower())
        if key is None:
            raise InputError(f"unknown image kind {kind!r}; valid kinds: 'normal' ('N'), 'blurred' ('B')")
        img = getattr(self, key)
        if img is None:
            have = [k for k in ("normal", "blurred") if getattr(self, k) is not None]
            raise InputError(f"sample {self.name!r} has no {key} image (it has: {', '.join(have) or 'none'})")
        return img

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are present, by name (handy for transforms)."""
        names = ("normal", "blurred", "alpha", "trimap", "fg", "bg", "facemask")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}
