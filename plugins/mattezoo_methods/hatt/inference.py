"""HAttMatting at test time: any image size, a cap on the side, batches.

The authors released no test code, so the procedure is the plain one the
architecture allows: the network needs sides that are multiples of
:data:`MULTIPLE` (output stride 16), so the image is reflect-padded on the
bottom and right up to the next multiple (replicate where a side is too small
to reflect), run at full resolution, and the matte is cropped back. Only when
the longer side exceeds ``max_side`` is the image first shrunk (bilinear,
antialiased) so that side equals ``max_side``; the matte is then resized back
(bilinear). Every image of a batch runs in the same pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mattezoo import checks

MULTIPLE = 16  # conv1, max-pool, layer2 and layer3 halve; layer4 is dilated
DEFAULT_MAX_SIDE = 1600


def check_max_side(max_side) -> int:
    """HAttMatting's pass sides are multiples of 16, not 32, so it accepts a ``max_side`` down to 16."""
    return checks.check_max_side(max_side, "HAttMatting", MULTIPLE)


def pad_to_multiple(image: torch.Tensor, multiple: int = MULTIPLE) -> torch.Tensor:
    """Pad the bottom and right up to multiples of ``multiple``: reflect, or replicate where a side is too short."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The size the network sees before padding: unchanged, or shrunk so the longer side is ``max_side``."""
    longer = max(height, width)
    if longer <= max_side:
        return height, width
    scale = max_side / longer
    return max(1, round(height * scale)), max(1, round(width * scale))


def infer(alpha_of, image: torch.Tensor, max_side: int) -> torch.Tensor:
    """Alpha ``[B,1,H,W]`` of ``image`` of any size; ``alpha_of`` maps a padded batch to its alpha."""
    height, width = image.shape[-2:]
    size = working_size(height, width, max_side)
    x = image if size == (height, width) else F.interpolate(image, size=size, mode="bilinear", align_corners=False,
                                                           antialias=True).clamp_(0.0, 1.0)
    alpha = alpha_of(pad_to_multiple(x))[..., : size[0], : size[1]]
    if size != (height, width):
        alpha = F.interpolate(alpha, size=(height, width), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return alpha
