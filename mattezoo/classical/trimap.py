"""Checking the inputs of classical matting and splitting a trimap into regions.

The classical estimators take plain NumPy arrays and may be called directly,
so they check everything here and raise :class:`mattezoo.errors.InputError`
with the problem and the accepted values, rather than failing inside SciPy or
the compiled kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..images import as_plane, check_trimap

#: Trimap encodings accepted by :func:`split_trimap`.
TRIMAP_HELP = (
    "uint8 with 0 (background), 128 (unknown), 255 (foreground), "
    "or float with 0 (background), 1 (foreground) and values strictly between them (unknown, e.g. 0.5)"
)


@dataclass(frozen=True)
class TrimapRegions:
    """Boolean ``H×W`` masks of a trimap's three regions."""

    foreground: np.ndarray
    background: np.ndarray
    unknown: np.ndarray

    @property
    def known(self) -> np.ndarray:
        return ~self.unknown

    def known_alpha(self) -> np.ndarray:
        """``H×W`` float64: 1 on foreground, 0 elsewhere (the constraint values)."""
        return self.foreground.astype(np.float64)


def as_float_image(image, name: str = "image") -> np.ndarray:
    """An ``H×W×3`` RGB image as C-contiguous float64 in [0,1] (uint8 input is divided by 255)."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name} must be an H×W×3 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{name} must have shape H×W×3 (RGB), got {image.shape}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image, dtype=np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise InputError(f"{name} must be float in [0,1] or uint8, got dtype {image.dtype}")
    if not np.isfinite(image).all():
        raise InputError(f"{name} contains {int((~np.isfinite(image)).sum())} NaN or infinite values")
    if image.size and (image.min() < 0 or image.max() > 1):
        raise InputError(f"{name} must lie in [0,1], got values in [{image.min():.4g}, {image.max():.4g}]")
    return np.ascontiguousarray(image, dtype=np.float64)


def split_trimap(trimap, shape: tuple[int, int], name: str = "trimap") -> TrimapRegions:
    """Check a trimap against an image of ``shape`` (H, W) and return its regions.

    Raises :class:`InputError` for a wrong type, shape or dtype, values outside
    the encoding (see :data:`TRIMAP_HELP`), and for a trimap without any
    foreground or without any background pixel, from which no matte can be
    propagated.
    """
    trimap = as_plane(trimap, shape, name, "an H×W numpy array")
    if trimap.dtype == np.uint8:
        trimap = check_trimap(trimap, shape, name)  # the library-wide 0/128/255 rule
        fg, bg = trimap == 255, trimap == 0
    elif np.issubdtype(trimap.dtype, np.floating):
        if not np.isfinite(trimap).all():
            raise InputError(f"{name} contains {int((~np.isfinite(trimap)).sum())} NaN or infinite values; expected {TRIMAP_HELP}")
        if trimap.size and (trimap.min() < 0 or trimap.max() > 1):
            raise InputError(f"{name} has values in [{trimap.min():.4g}, {trimap.max():.4g}], outside [0,1]; expected {TRIMAP_HELP}")
        fg, bg = trimap == 1.0, trimap == 0.0
    else:
        raise InputError(f"{name} has dtype {trimap.dtype}; expected {TRIMAP_HELP}")
    unknown = ~(fg | bg)
    if unknown.any():
        if not fg.any():
            raise InputError(f"{name} has no foreground pixels (255 or 1.0); a matte needs both known foreground and known background")
        if not bg.any():
            raise InputError(f"{name} has no background pixels (0); a matte needs both known foreground and known background")
    return TrimapRegions(foreground=fg, background=bg, unknown=unknown)
