"""AlphaGAN's discriminator: pix2pix's PatchGAN on a composite plus its trimap.

The pix2pix ``NLayerDiscriminator`` (Isola et al. 2017; module list
``model.0`` ..., its default ``n_layers=3``: the 70×70 PatchGAN): a 4×4
stride-2 conv (64, with bias) and LeakyReLU(0.2); ``n_layers - 1`` more 4×4
stride-2 convs doubling the width (capped at 8×64), each followed by
BatchNorm and LeakyReLU; one 4×4 stride-1 conv with BatchNorm and LeakyReLU;
a 4×4 stride-1 conv to one channel with bias. The output is one logit per
overlapping patch (no sigmoid: the losses take logits).

The input has 4 channels: the normalised RGB composite and the trimap channel
(AlphaGAN's discriminator sees the trimap, so it judges the composite where
the matte matters). Weights start as pix2pix's ``init_type="normal"``:
conv weights N(0, 0.02), BatchNorm scales N(1, 0.02), biases 0.
"""

from __future__ import annotations

import torch
from torch import nn

IN_CHANNELS = 4
KERNEL, PAD = 4, 1
DEFAULT_LAYERS = 3
BASE_WIDTH = 64


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = IN_CHANNELS, n_layers: int = DEFAULT_LAYERS, width: int = BASE_WIDTH):
        super().__init__()
        self.n_layers = n_layers
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, KERNEL, stride=2, padding=PAD), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width * prev, width * mult, KERNEL, stride=stride, padding=PAD, bias=False),
                       nn.BatchNorm2d(width * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(width * mult, 1, KERNEL, stride=1, padding=PAD))
        self.model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    @staticmethod
    def patch_grid(height: int, width: int, n_layers: int = DEFAULT_LAYERS) -> tuple[int, int]:
        """The ``(rows, cols)`` of logits for an input of ``height × width``."""
        def side(s: int) -> int:
            for _ in range(n_layers):  # stride-2 convs: floor((s + 2 - 4) / 2) + 1
                s = (s + 2 * PAD - KERNEL) // 2 + 1
            for _ in range(2):  # the two stride-1 convs each lose one
                s = s + 2 * PAD - KERNEL + 1
            return s
        return side(height), side(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B,1,h,w]`` patch logits (real > 0) of ``[B,4,H,W]`` composite + trimap."""
        return self.model(x)
