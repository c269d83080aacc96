"""AlphaGAN's ASPP and decoder.

ASPP (DeepLab v3) on the 2048-channel 1/8 features: a 1×1 branch, three 3×3
branches dilated 6, 12 and 18, and an image-pooling branch (global average,
1×1 conv, broadcast back), 256 channels each, each conv followed by BatchNorm
and ReLU; the five are concatenated and projected to 256 channels by a 1×1
conv + BN + ReLU. Module names follow torchvision's
``models.segmentation.deeplabv3.ASPP`` (``convs.0..4``, ``project``), so its
weights load here; unlike torchvision's, the projection has no dropout.

Decoder, from 1/8 back to full size (channel widths of the CDOTAD
re-implementation, which the docs page discusses):

1. ×2 bilinear (1/8 → 1/4), concatenated with ``layer1`` reduced to 64
   channels (1×1 conv + BN + ReLU, ``skip4``); three 3×3 convs 320 → 256 →
   128 → 64 (``stage4``);
2. max-unpooling with the indices of the encoder's first pooling (1/4 → 1/2),
   concatenated with the stem reduced to 32 channels (``skip2``); 3×3 conv
   96 → 64, a stride-2 transposed conv 64 → 64 (1/2 → 1), 3×3 conv 64 → 32
   (``stage2``);
3. concatenated with the normalised RGB input; two 3×3 convs 35 → 32 → 32
   (``stage1``); a 3×3 conv to one channel and a sigmoid (``head``).

Every conv but the last is followed by BatchNorm and ReLU; no conv has a bias
(BatchNorm supplies it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mattezoo.ops import max_unpool2d

from .encoder import EncoderFeatures

ASPP_RATES = (6, 12, 18)
ASPP_CHANNELS = 256


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, dilation: int = 1) -> list[nn.Module]:
    padding = dilation * (kernel // 2)
    return [nn.Conv2d(in_ch, out_ch, kernel, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]


class ImagePooling(nn.Sequential):
    """Global average → 1×1 conv + BN + ReLU, broadcast back to the feature size."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(in_ch, out_ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Bilinear from 1×1 is a broadcast; expand says so without interpolating.
        return super().forward(x).expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    def __init__(self, in_ch: int = 2048, out_ch: int = ASPP_CHANNELS, rates: tuple[int, ...] = ASPP_RATES):
        super().__init__()
        branches = [nn.Sequential(*conv_bn_relu(in_ch, out_ch, 1))]
        branches += [nn.Sequential(*conv_bn_relu(in_ch, out_ch, 3, rate)) for rate in rates]
        branches.append(ImagePooling(in_ch, out_ch))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(*conv_bn_relu(out_ch * len(branches), out_ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class Decoder(nn.Module):
    def __init__(self, in_ch: int = ASPP_CHANNELS):
        super().__init__()
        self.skip4 = nn.Sequential(*conv_bn_relu(256, 64, 1))
        self.stage4 = nn.Sequential(*conv_bn_relu(in_ch + 64, 256), *conv_bn_relu(256, 128), *conv_bn_relu(128, 64))
        self.skip2 = nn.Sequential(*conv_bn_relu(64, 32, 1))
        self.stage2 = nn.Sequential(
            *conv_bn_relu(64 + 32, 64),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            *conv_bn_relu(64, 32),
        )
        self.stage1 = nn.Sequential(*conv_bn_relu(32 + 3, 32), *conv_bn_relu(32, 32))
        self.head = nn.Conv2d(32, 1, 3, padding=1, bias=False)

    def forward(self, context: torch.Tensor, features: EncoderFeatures, rgb: torch.Tensor) -> torch.Tensor:
        """``[B,1,H,W]`` alpha from the ASPP output, the encoder's skips and the normalised RGB input."""
        x = F.interpolate(context, scale_factor=2, mode="bilinear", align_corners=True)
        x = self.stage4(torch.cat([x, self.skip4(features.layer1)], dim=1))
        x = max_unpool2d(x, features.pool_indices, features.stem.shape[-2:])
        x = self.stage2(torch.cat([x, self.skip2(features.stem)], dim=1))
        x = self.stage1(torch.cat([x, rgb], dim=1))
        return torch.sigmoid(self.head(x))


def init_decoder_weights(module: nn.Module) -> None:
    """He-normal convs (fan-in, ReLU gain), BatchNorm at identity: the re-implementation's initialisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
