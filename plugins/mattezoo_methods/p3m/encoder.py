"""P3M-Net's ResNet-34 encoder: a stride-1 stem and five index-keeping max-pools.

As in the official ``resnet_mp.py`` (JizhiziLi/P3M): the 7×7 stem conv has
stride 1, every residual stage has stride 1, and all downsampling is done by
five 3×3 / stride-2 / padding-1 max-pools whose indices the matting decoder
uses to unpool. The classifier head (``avgpool``/``fc``) is never used for
matting, but it is kept: it is part of the official P3M-Net ``state_dict`` (and
parameter count) and of the ImageNet backbone file ``r34mp_pretrained_imagenet.pth.tar``.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from mattezoo.weights import load_into, load_state_dict

from .decoder import EncoderFeatures
from .pooling import MaxPoolWithIndices

R34_STAGES = (3, 4, 6, 3)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs), always stride 1 here."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        # A stage that widens the channels projects its shortcut (1×1 conv + BN).
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)) if in_ch != out_ch else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet34MP(nn.Module):
    """The modified ResNet-34 ("r34mp"), with the official attribute names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=1, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        for i in range(1, 6):
            self.add_module(f"maxpool{i}", MaxPoolWithIndices(kernel_size=3, stride=2, padding=1))
        widths = (64, 128, 256, 512)
        in_ch = 64
        for i, (width, depth) in enumerate(zip(widths, R34_STAGES), start=1):
            blocks = [BasicBlock(in_ch if b == 0 else width, width) for b in range(depth)]
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, 1000)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's ResNet initialisation, which the official code keeps.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> EncoderFeatures:
        """Full-resolution stem, then pool → stage four times (plus one pool before stage 1)."""
        e0 = self.relu(self.bn1(self.conv1(x)))  # 64 @ 1
        e0p, id0 = self.maxpool1(e0)  # 64 @ 1/2
        e1p, id1 = self.maxpool2(e0p)  # 64 @ 1/4
        e1 = self.layer1(e1p)
        e2p, id2 = self.maxpool3(e1)  # 128 @ 1/8
        e2 = self.layer2(e2p)
        e3p, id3 = self.maxpool4(e2)  # 256 @ 1/16
        e3 = self.layer3(e3p)
        e4p, id4 = self.maxpool5(e3)  # 512 @ 1/32
        e4 = self.layer4(e4p)
        return EncoderFeatures(e0, (e0p, e1, e2, e3), e4, (id0, id1, id2, id3, id4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits, as the backbone was pretrained (not used for matting)."""
        return self.fc(torch.flatten(self.avgpool(self.features(x).deep), 1))

    def load_imagenet(self, path: str | os.PathLike) -> None:
        """Load the official ImageNet checkpoint (``r34mp_pretrained_imagenet.pth.tar``), strictly.

        A file that does not fit raises :class:`mattezoo.errors.CheckpointError`
        listing the missing and unexpected keys; nothing is unpickled beyond tensors.
        """
        load_into(self, load_state_dict(path), source=f"ImageNet backbone {str(path)!r}")
