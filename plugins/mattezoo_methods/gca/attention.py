"""Guided contextual attention (GCA block), as the official ``GuidedCxtAtten`` computes it.

Inputs at 1/8 of the image: ``guidance`` (image features of the guidance
head), ``features`` (the alpha features to propagate) and ``unknown`` (1 where
the trimap is unknown). With ``rate = 2``:

1. the guidance goes through a 1×1 conv (halving its channels) and is
   subsampled (nearest) to 1/16; every position ``l`` gives a 3×3 patch
   (reflect padding);
2. the similarity of patch ``l`` to position ``p`` is the dot product of the
   L2-normalised patch ``l`` (norm floored at 1e-4) with the raw patch ``p``;
3. each row ``l`` is scaled by the image's unknown-scale when its 3×3
   neighbourhood in the subsampled unknown mask holds an unknown pixel, by the
   known-scale otherwise: ``clamp(sqrt(u / k), 0.1, 10)`` and
   ``clamp(sqrt(k / u), 0.1, 10)``, ``u`` / ``k`` being the unknown / known
   fractions of the subsampled mask; a patch in the unknown region gets -1e4
   against its own position;
4. a softmax over ``l`` gives, for each position ``p``, the weights of the
   source patches; the 4×4, stride-2 patches of ``features`` (reflect
   padding 1) are pasted back with those weights, as a transposed convolution
   with stride 2, padding 1, divided by 4;
5. the result goes through a 1×1 conv and BatchNorm and is added to
   ``features``.

The official module runs steps 2 and 4 as per-sample convolutions with the
patches as kernels; here they are one batched matrix product each
(``unfold`` / ``fold``), the same sums in another order (float rounding).
The official module also returns the attention's argmax offsets, for
visualisation only; they are not computed here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PATCH_NORM_FLOOR = 1e-4  # official escape_NaN
SELF_MASK = -1e4  # official score of an unknown patch against itself
SCALE_MIN, SCALE_MAX = 0.1, 10.0


class GuidedContextualAttention(nn.Module):
    """The GCA block (official ``GuidedCxtAtten(out_channels, guidance_channels, rate=2)``)."""

    def __init__(self, channels: int = 128, guidance_channels: int = 128, rate: int = 2):
        super().__init__()
        self.rate = rate
        self.guidance_conv = nn.Conv2d(guidance_channels, guidance_channels // 2, kernel_size=1)
        self.W = nn.Sequential(nn.Conv2d(channels, channels, kernel_size=1, bias=False), nn.BatchNorm2d(channels))
        # Official initialisation: the block starts close to the identity (BN scale 1e-3).
        nn.init.xavier_uniform_(self.guidance_conv.weight)
        nn.init.zeros_(self.guidance_conv.bias)
        nn.init.xavier_uniform_(self.W[0].weight)
        nn.init.constant_(self.W[1].weight, 1e-3)
        nn.init.zeros_(self.W[1].bias)

    def _subsample(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=1 / self.rate, mode="nearest")

    def _row_scales(self, unknown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row softmax scales ``[B,L]`` and which rows are unknown patches ``[B,L]``."""
        unknown = self._subsample(unknown.to(torch.float32))
        unknown_mean = unknown.mean(dim=(2, 3))  # [B,1]
        known_mean = 1 - unknown_mean
        unknown_scale = torch.sqrt(unknown_mean / known_mean).clamp(SCALE_MIN, SCALE_MAX)
        known_scale = torch.sqrt(known_mean / unknown_mean).clamp(SCALE_MIN, SCALE_MAX)
        # A patch counts as unknown when its 3x3 (reflect-padded) neighbourhood holds an unknown pixel.
        neighbourhood = F.unfold(F.pad(unknown, (1, 1, 1, 1), mode="reflect"), 3)  # [B,9,L]
        is_unknown = neighbourhood.amax(dim=1) > 0
        return torch.where(is_unknown, unknown_scale, known_scale), is_unknown

    def attention(self, guidance: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
        """``[B,L,L]`` softmax weights: entry ``(l, p)`` is how much source patch ``l`` gives position ``p``."""
        g = self._subsample(self.guidance_conv(guidance))
        patches = F.unfold(F.pad(g, (1, 1, 1, 1), mode="reflect"), 3)  # [B, C*9, L]
        norms = patches.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(PATCH_NORM_FLOOR)
        scores = torch.bmm((patches / norms).transpose(1, 2), patches)  # [B, L, L]
        scales, is_unknown = self._row_scales(unknown)
        scores = scores * scales.to(scores.dtype).unsqueeze(2)
        self_mask = torch.diag_embed(is_unknown.to(scores.dtype) * SELF_MASK)
        return torch.softmax(scores + self_mask, dim=1)

    def forward(self, guidance: torch.Tensor, features: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
        """``features`` ``[B,C,h,w]`` plus the attention-propagated context (h, w even, 1/8 of the image)."""
        height, width = features.shape[-2:]
        weights = self.attention(guidance, unknown)
        # 4x4 patches of the features at stride 2: one per attention position.
        sources = F.unfold(F.pad(features, (1, 1, 1, 1), mode="reflect"), 4, stride=self.rate)  # [B, C*16, L]
        pasted = torch.bmm(sources, weights.to(sources.dtype))  # [B, C*16, L]
        context = F.fold(pasted, (height, width), 4, stride=self.rate, padding=1) / 4.0
        return self.W(context) + features
