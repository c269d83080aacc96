"""GFM's building blocks, with the official module layouts (so the ``state_dict`` keys match).

Every block is an ``nn.Sequential`` in the official index order: a checkpoint
key such as ``decoder3_g.4.running_var`` names the BatchNorm after the second
conv of a decoder block. Layouts (JizhiziLi/GFM ``core/gfm.py``):

* decoder block: conv3×3 → BN → ReLU → conv3×3 → BN → ReLU → conv3×3
  [→ BN → ReLU] [→ ×2 bilinear upsampling]; all convs with bias.
* PSP side branch: conv3×3 → BN → ReLU → ×k bilinear upsampling.
* bridge block: three dilated (2) 3×3 convs, each followed by BN and ReLU.
* pyramid pooling: average pools to 1×1, 3×3 and 5×5, a 1×1 conv each (no
  bias), bilinear back to the input size (``align_corners=True``),
  concatenated with the input, then a 1×1 conv (with bias) and ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn_relu(in_ch: int, out_ch: int, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]


def decoder_block(in_ch: int, mid1: int, mid2: int, out_ch: int, *, last_bn_relu: bool, upsample: bool) -> nn.Sequential:
    """Three 3×3 convs; the last optionally with BN + ReLU; optionally ×2 bilinear (half-pixel centres)."""
    layers = [*_conv_bn_relu(in_ch, mid1), *_conv_bn_relu(mid1, mid2), nn.Conv2d(mid2, out_ch, 3, padding=1)]
    if last_bn_relu:
        layers += [nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
    if upsample:
        layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
    return nn.Sequential(*layers)


def psp_branch(in_ch: int, out_ch: int, scale: int) -> nn.Sequential:
    """conv3×3 + BN + ReLU on the pooled context, upsampled ``scale`` times to a decoder stage."""
    return nn.Sequential(*_conv_bn_relu(in_ch, out_ch), nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False))


def bridge_block(in_ch: int, mid: int, out_ch: int) -> nn.Sequential:
    """The focus decoder's entry: three dilation-2 convs (a wider receptive field at 1/32)."""
    return nn.Sequential(*_conv_bn_relu(in_ch, mid, 2), *_conv_bn_relu(mid, out_ch, 2), *_conv_bn_relu(out_ch, out_ch, 2))


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling with the official attribute names (``stages``, ``bottleneck``)."""

    def __init__(self, channels: int, out_channels: int, bins: tuple[int, ...] = (1, 3, 5)):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(channels, channels, 1, bias=False)) for b in bins
        )
        self.bottleneck = nn.Conv2d(channels * (len(bins) + 1), out_channels, 1)
        self.relu = nn.ReLU()

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        size = feats.shape[-2:]
        priors = [F.interpolate(stage(feats), size=size, mode="bilinear", align_corners=True) for stage in self.stages]
        return self.relu(self.bottleneck(torch.cat([*priors, feats], dim=1)))


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (stride on the first conv, projected shortcut when the shape changes)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet34(nn.Module):
    """torchvision's ResNet-34 (stride-2 7×7 stem, max-pool, four stages, ImageNet head), same key names.

    The official GFM builds ``torchvision.models.resnet34(pretrained=True)``
    and keeps the whole module as ``resnet`` (its ``fc`` head included, unused
    for matting), so torchvision's ImageNet file loads into it unchanged.
    """

    STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # width, blocks, stride of the first block

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = 64
        for i, (width, blocks, stride) in enumerate(self.STAGES, start=1):
            stage = [BasicBlock(in_ch, width, stride)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*stage))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, 1000)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (how the backbone was pretrained; matting uses the stages directly)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
