"""The small learnable training batch the method tests share: a soft disc composited on noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def disc_batch(size: int = 64, batch: int = 2, *, ramp: float = 6.0, widen_unknown: bool = True) -> dict[str, torch.Tensor]:
    """``image``, ``alpha``, ``trimap``, ``fg`` and ``bg`` of a disc whose alpha ramps over ``ramp`` pixels.

    The trimap is the alpha's own 0 / transition / 1 classes; ``widen_unknown``
    also marks background pixels within 2 px of the disc as unknown, as
    training trimaps do. Deterministic: the colours come from a fixed seed.
    """
    gen = torch.Generator().manual_seed(11)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    alpha = ((size * 0.3 - torch.hypot(yy - size / 2, xx - size / 2)) / ramp + 0.5).clamp(0, 1)[None, None].repeat(batch, 1, 1, 1)
    trimap = torch.where(alpha == 1, 1.0, torch.where(alpha == 0, 0.0, 0.5))
    if widen_unknown:
        trimap = torch.where((trimap == 0) & (F.max_pool2d(alpha, 5, 1, 2) > 0), 0.5, trimap)
    fg = torch.rand(batch, 3, 1, 1, generator=gen).expand(batch, 3, size, size) * 0.5 + 0.5
    bg = torch.rand(batch, 3, size, size, generator=gen) * 0.5
    return {"image": alpha * fg + (1 - alpha) * bg, "alpha": alpha, "trimap": trimap, "fg": fg, "bg": bg}
