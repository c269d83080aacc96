"""SHM at test time, for images of any size.

The paper gives no test procedure beyond "the network runs on the image". An
image whose longer side exceeds ``max_side`` is shrunk (bilinear, antialiased)
so that side equals ``max_side``; it is then padded to a multiple of 16 (the
M-Net's four poolings; reflect padding, replicate where the image is too small
to reflect), run once, cropped back, and the outputs are resized (bilinear) to
the image size. Images of at most ``max_side`` pixels per side run at their
own resolution, so nothing is resampled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mattezoo.errors import InputError, InvalidOptionError

DEFAULT_MAX_SIDE = 1600
MIN_MAX_SIDE = 32


def check_max_side(max_side) -> int:
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < MIN_MAX_SIDE:
        raise InvalidOptionError(f"max_side must be an int >= {MIN_MAX_SIDE} (the longest image side SHM runs at), "
                                 f"got {max_side!r}")
    return max_side


def check_image(image) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
        raise InputError(f"SHM takes a float [B,3,H,W] RGB image tensor in [0,1], got {getattr(image, 'shape', type(image).__name__)!r}")
    if 0 in image.shape:
        raise InputError(f"SHM got an empty image tensor of shape {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("SHM got an image tensor with NaN or infinite values")


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The size the network runs at: the image's, or shrunk so the longer side is ``max_side`` (at least 1 px)."""
    longer = max(height, width)
    if longer <= max_side:
        return height, width
    scale = max_side / longer
    return max(1, round(height * scale)), max(1, round(width * scale))


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def infer(model, image: torch.Tensor, max_side: int = DEFAULT_MAX_SIDE):
    """Run ``model`` (an :class:`~.model.SHM`) on ``image`` ``[B,3,H,W]`` in [0,1] of any size.

    Returns an :class:`~.model.SHMOutput` at the image size; ``fused`` is clamped to [0,1].
    """
    from .model import MULTIPLE, SHMOutput

    check_image(image)
    check_max_side(max_side)
    height, width = image.shape[-2:]
    dtype = next(model.parameters()).dtype
    run_h, run_w = working_size(height, width, max_side)
    x = image.to(dtype)
    if (run_h, run_w) != (height, width):
        x = F.interpolate(x, size=(run_h, run_w), mode="bilinear", align_corners=False, antialias=True)
    out = model.forward_intermediates(pad_to_multiple(x, MULTIPLE))
    maps = [m[..., :run_h, :run_w] for m in out]
    if (run_h, run_w) != (height, width):
        maps = [F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False) for m in maps]
    logits, raw, fused = maps
    return SHMOutput(logits, raw, fused.clamp(0.0, 1.0))
