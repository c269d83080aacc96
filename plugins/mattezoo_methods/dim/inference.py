"""DIM's official test procedure (mmagic ``BaseMattor`` with the DIM ``test_cfg``), for images of any size.

1. The network input (normalised image and trimap channel) is padded at the
   bottom and right, by reflection, up to the next multiple of 32
   (``resize_method="pad"``, ``resize_mode="reflect"``, ``size_divisor=32``).
2. One pass; the refined matte where the model has a refiner
   (``test_cfg.refine=True`` in the stage-2/3 configs), else the
   encoder-decoder's.
3. The matte is cropped back, clamped to [0,1], set to 1 where the trimap is
   foreground and 0 where it is background; the official code then stores it
   as uint8 (``quantize=True`` repeats that rounding).

The official code takes one image at a time; a batch here gives each image
what it would get alone (the network has no batch statistics and the padding
depends only on the shared size). Unlike the official code, images too small
for a reflection pad (a side shorter than its pad) are padded by replication,
and images with a side over ``max_side`` are refused rather than run out of
memory (the pass is at full resolution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mattezoo import checks
from mattezoo.errors import InputError, InvalidOptionError

MULTIPLE = 32  # five 2×2 poolings
DEFAULT_MAX_SIDE = 3200  # a full-resolution pass needs about 1.8 GB per megapixel: ~18 GB at 3200×3200


def check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise InvalidOptionError(f"DIM option {name} must be True or False, got {value!r}")
    return value


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The official pad target: the next multiple of 32 of each side."""
    return MULTIPLE * ((height - 1) // MULTIPLE + 1), MULTIPLE * ((width - 1) // MULTIPLE + 1)


def pad_to_multiple(x: torch.Tensor) -> torch.Tensor:
    """Reflect-pad the bottom and right of ``x`` to :func:`padded_size` (replicate where a side is too short)."""
    height, width = x.shape[-2:]
    new_h, new_w = padded_size(height, width)
    pad_h, pad_w = new_h - height, new_w - width
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def apply_known(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1], then 1 on the trimap's foreground and 0 on its background (the official post-processing)."""
    alpha = alpha.clamp(0.0, 1.0)
    alpha = torch.where(trimap == 1.0, torch.ones_like(alpha), alpha)
    return torch.where(trimap == 0.0, torch.zeros_like(alpha), alpha)


def infer(model, image: torch.Tensor, trimap: torch.Tensor | None, *, max_side: int = DEFAULT_MAX_SIDE,
          quantize: bool = False) -> torch.Tensor:
    """The official test of ``model`` (a DIM) on ``image`` ``[B,3,H,W]`` in [0,1] with its trimap; ``[B,1,H,W]`` float32."""
    checks.check_image(image, "DIM")
    checks.check_trimap(trimap, image, "DIM")
    height, width = image.shape[-2:]
    if max(height, width) > max_side:
        raise InputError(f"DIM runs the whole image in one pass and refuses sides over max_side={max_side}, got "
                         f"{height}×{width}; downscale the image or build the method with a larger max_side")
    dtype = model.input_dtype
    out = model.forward_intermediates(pad_to_multiple(image.to(dtype)), pad_to_multiple(trimap.to(dtype)))
    alpha = apply_known(out.final[..., :height, :width].float(), trimap)
    if quantize:
        alpha = torch.round(alpha * 255.0) / 255.0
    return alpha
