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

from mattezoo import checks

DEFAULT_MAX_SIDE = 1600


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


def _working_input(image: torch.Tensor, max_side: int, dtype: torch.dtype) -> tuple[torch.Tensor, int, int]:
    """The image as the network runs it (shrunk to ``max_side``, not yet padded) and that size."""
    checks.check_image(image, "SHM")
    checks.check_max_side(max_side, "SHM")
    run_h, run_w = working_size(*image.shape[-2:], max_side)
    x = image.to(dtype)
    if (run_h, run_w) != tuple(image.shape[-2:]):
        x = F.interpolate(x, size=(run_h, run_w), mode="bilinear", align_corners=False, antialias=True)
    return x, run_h, run_w


def _restore(maps, run_h: int, run_w: int, size) -> list[torch.Tensor]:
    """Crop the padding off, then resize to the image size where the image was shrunk."""
    maps = [m[..., :run_h, :run_w] for m in maps]
    if (run_h, run_w) != tuple(size):
        maps = [F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False) for m in maps]
    return maps


def infer_trimap(model, image: torch.Tensor, max_side: int = DEFAULT_MAX_SIDE) -> torch.Tensor:
    """The T-Net's trimap ``[B,1,H,W]`` (0 / 0.5 / 1) of ``image`` of any size; the M-Net does not run."""
    from .model import MULTIPLE

    x, run_h, run_w = _working_input(image, max_side, next(model.parameters()).dtype)
    (logits,) = _restore([model.segment(pad_to_multiple(x, MULTIPLE))], run_h, run_w, image.shape[-2:])
    return logits.argmax(dim=1, keepdim=True).to(torch.float32) * 0.5


def infer(model, image: torch.Tensor, max_side: int = DEFAULT_MAX_SIDE):
    """Run ``model`` (an :class:`~.model.SHM`) on ``image`` ``[B,3,H,W]`` in [0,1] of any size.

    Returns an :class:`~.model.SHMOutput` at the image size; ``fused`` is clamped to [0,1].
    """
    from .model import MULTIPLE, SHMOutput

    x, run_h, run_w = _working_input(image, max_side, next(model.parameters()).dtype)
    out = model.forward_intermediates(pad_to_multiple(x, MULTIPLE))
    logits, raw, fused = _restore(out, run_h, run_w, image.shape[-2:])
    return SHMOutput(logits, raw, fused.clamp(0.0, 1.0))
