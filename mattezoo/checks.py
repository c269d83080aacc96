"""Input checks for the tensor APIs of the learned matting methods.

Every network plugin takes a ``[B,3,H,W]`` float image in [0,1], most a
``[B,1,H,W]`` trimap of 0 / 0.5 / 1, and a ``max_side`` option. The checks
live here once, so that each method refuses bad input with the same
:mod:`mattezoo.errors` class and a message that names the method (``who``),
the problem and the valid choices, instead of each plugin keeping its own
slightly different copy.
"""

from __future__ import annotations

import torch

from .errors import InputError, InvalidOptionError

_VALID_TRIMAP = "valid values: 0 (background), 0.5 (unknown), 1 (foreground)"


def check_image(image, who: str) -> None:
    """Refuse anything but a finite, non-empty ``[B,3,H,W]`` float tensor in [0,1] (``who`` names the method)."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{who} takes a [B,3,H,W] float tensor in [0,1], got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"{who} takes an RGB image tensor [B,3,H,W], got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"{who} takes a float image in [0,1], got dtype {image.dtype}; divide uint8 images by 255")
    if 0 in image.shape:
        raise InputError(f"{who}: the image tensor is empty: shape {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError(f"{who}: the image tensor contains NaN or infinite values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{who} takes image values in [0,1], got values in [{lo:.4g}, {hi:.4g}]; "
                         "divide uint8 images by 255")


def check_trimap(trimap, image: torch.Tensor, who: str) -> None:
    """Refuse anything but a finite float ``[B,1,H,W]`` trimap of 0 / 0.5 / 1 matching ``image`` (checked first).

    ``None`` is refused too: ``who`` is a trimap-based method.
    """
    if trimap is None:
        raise InputError(f"{who} is trimap-based and needs a trimap [B,1,H,W] with 0 (background), 0.5 (unknown), "
                         "1 (foreground)")
    if not isinstance(trimap, torch.Tensor):
        raise InputError(f"{who} takes a trimap tensor [B,1,H,W] with 0 / 0.5 / 1, got {type(trimap).__name__}")
    if trimap.ndim != 4 or trimap.shape[1] != 1:
        raise InputError(f"{who} takes a trimap tensor [B,1,H,W], got shape {tuple(trimap.shape)}")
    expected = (image.shape[0], 1, *image.shape[-2:])
    if tuple(trimap.shape) != expected:
        raise InputError(f"{who}: the trimap {tuple(trimap.shape)} does not match the image {tuple(image.shape)}; "
                         f"it must be {expected} (the image's batch size, height and width)")
    if not trimap.is_floating_point():
        # Both words, "float trimap" and "float tensor", since users search for either.
        raise InputError(f"{who} takes a float trimap (a float tensor with 0/0.5/1), got dtype {trimap.dtype}; "
                         "map uint8 0/128/255 to 0/0.5/1 with mattezoo.inference.trimap_to_tensor")
    if trimap.device != image.device:
        raise InputError(f"{who}: the trimap is on {trimap.device} but the image is on {image.device}; "
                         "put both on one device")
    if not torch.isfinite(trimap).all():
        raise InputError(f"{who}: the trimap contains NaN or infinite values; {_VALID_TRIMAP}")
    odd = (trimap != 0.0) & (trimap != 0.5) & (trimap != 1.0)
    if bool(odd.any()):
        shown = ", ".join(f"{v:.4g}" for v in torch.unique(trimap[odd])[:5].tolist())
        raise InputError(f"{who}: the trimap holds {int(odd.sum())} odd value(s) ({shown}); {_VALID_TRIMAP}")


def check_max_side(max_side, who: str, multiple: int = 32) -> int:
    """``max_side`` itself if it is an int (not a bool) of at least ``multiple``, else :class:`InvalidOptionError`."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < multiple:
        raise InvalidOptionError(f"max_side must be an int >= {multiple} (the longest image side {who} runs), "
                                 f"got {max_side!r}")
    return max_side
