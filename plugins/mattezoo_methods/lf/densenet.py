"""DenseNet-201 in torchvision's parameter layout, as LF's encoder, returning the skip features.

Attribute names equal torchvision's ``densenet201`` (``features.conv0``,
``features.denseblock1.denselayer1.norm1`` ... ``features.norm5``,
``classifier``), so torchvision's ImageNet file loads with ``strict=True``
after its legacy key spelling is mapped (see :func:`modern_densenet_keys`).
The classifier is kept only so that the ImageNet file fits strictly; the
matting network never calls it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

GROWTH = 32
BLOCKS = (6, 12, 48, 32)  # DenseNet-201
STEM = 64
BOTTLENECK = 4  # the 1x1 conv of a dense layer widens to 4 * growth
# torchvision's released files spell "norm1" as "norm.1" (saved before a rename); its loader rewrites them the same way.
_LEGACY_KEY = re.compile(r"(denselayer\d+\.(?:norm|conv))\.([12])\.")


def modern_densenet_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the legacy ``denselayerN.norm.1.weight`` spelling to ``denselayerN.norm1.weight``; other keys pass."""
    return {_LEGACY_KEY.sub(r"\1\2.", key): value for key, value in state.items()}


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv to 4k channels, BN-ReLU-3x3 conv to k new channels, appended to the input."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, BOTTLENECK * GROWTH, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(BOTTLENECK * GROWTH)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(BOTTLENECK * GROWTH, GROWTH, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return torch.cat((x, new), 1)


class DenseBlock(nn.Sequential):
    def __init__(self, layers: int, in_channels: int):
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * GROWTH))


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv halving the channels, then 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class Skips(NamedTuple):
    """The encoder features the decoders read (channels @ stride)."""

    s2: torch.Tensor  # 64 @ 1/2: the stem after ReLU
    s4: torch.Tensor  # 256 @ 1/4: dense block 1
    s8: torch.Tensor  # 512 @ 1/8: dense block 2
    s16: torch.Tensor  # 1792 @ 1/16: dense block 3
    s32: torch.Tensor  # 1920 @ 1/32: dense block 4 after norm5 and ReLU


def block_widths() -> tuple[int, ...]:
    """Channels after each dense block (before its transition): 256, 512, 1792, 1920 for DenseNet-201."""
    widths, channels = [], STEM
    for i, layers in enumerate(BLOCKS):
        channels += layers * GROWTH
        widths.append(channels)
        if i < len(BLOCKS) - 1:
            channels //= 2
    return tuple(widths)


class DenseNet201(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, STEM, 7, stride=2, padding=3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(STEM))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
        channels = STEM
        for i, (layers, width) in enumerate(zip(BLOCKS, block_widths())):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(layers, channels))
            if i < len(BLOCKS) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(width, width // 2))
                channels = width // 2
        self.features.add_module("norm5", nn.BatchNorm2d(block_widths()[-1]))
        self.classifier = nn.Linear(block_widths()[-1], 1000)  # ImageNet head: loaded, never run

    def forward(self, x: torch.Tensor) -> Skips:
        f = self.features
        s2 = f.relu0(f.norm0(f.conv0(x)))
        s4 = f.denseblock1(f.pool0(s2))
        s8 = f.denseblock2(f.transition1(s4))
        s16 = f.denseblock3(f.transition2(s8))
        s32 = F.relu(f.norm5(f.denseblock4(f.transition3(s16))))
        return Skips(s2, s4, s8, s16, s32)
