"""The GCA encoder (official ``resnet_gca_encoder_29``: ``ResGuidedCxtAtten`` on ``ResNet_D``).

A ResNet-34-style encoder with the "ResNet-D" tricks (three 3×3 stem convs,
average-pool shortcuts), every conv spectrally normalised, BasicBlocks
``[3, 4, 4, 2]``; it takes the ImageNet-normalised image and the one-hot
trimap (6 channels). Beside the 1/32 embedding it gives:

* five shortcut features for the decoder (two SN-conv / ReLU / BN pairs on
  the input, 1/2, 1/4, 1/8 (after the GCA block) and 1/16 features);
* the guidance features (three stride-2 SN convs on the image, 1/8);
* the unknown mask at 1/8 (nearest), and the first GCA block's output at 1/8.

Attribute names follow the official module so the ``state_dict`` keys match.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import GuidedContextualAttention
from .spectral import SpectralNorm

IN_CHANNELS = 6  # RGB + one-hot trimap (background, unknown, foreground)
UNKNOWN_CHANNEL = 4  # the one-hot "unknown" plane of the input
BLOCKS = (3, 4, 4, 2)


def sn_conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> SpectralNorm:
    return SpectralNorm(nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False))


class BasicBlock(nn.Module):
    """Residual block of two SN 3×3 convs; ``downsample`` adapts the identity when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = sn_conv(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.activation = nn.ReLU(inplace=True)
        self.conv2 = sn_conv(cout, cout, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.activation(out + identity)


def shortcut_branch(cin: int, cout: int) -> nn.Sequential:
    """Two SN-conv / ReLU / BN steps (ReLU before BN, as officially)."""
    return nn.Sequential(sn_conv(cin, cout, 3, 1, 1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout),
                         sn_conv(cout, cout, 3, 1, 1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout))


def guidance_head() -> nn.Sequential:
    """Image -> 1/8 guidance features: three reflect-padded stride-2 SN convs 3→16→32→128."""
    layers: list[nn.Module] = []
    for cin, cout in ((3, 16), (16, 32), (32, 128)):
        layers += [nn.ReflectionPad2d(1), sn_conv(cin, cout, 3, 2, 0), nn.ReLU(inplace=True), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers)


class EncoderOutput(NamedTuple):
    embedding: torch.Tensor  # [B,512,H/32,W/32]
    shortcuts: tuple[torch.Tensor, ...]  # 32@1, 32@1/2, 64@1/4, 128@1/8, 256@1/16
    guidance: torch.Tensor  # [B,128,H/8,W/8]
    unknown: torch.Tensor  # [B,1,H/8,W/8], 1 where the trimap is unknown


class GCAEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.inplanes = 64
        self.conv1 = sn_conv(IN_CHANNELS, 32, 3, 2, 1)
        self.conv2 = sn_conv(32, 32, 3, 1, 1)
        self.conv3 = sn_conv(32, 64, 3, 2, 1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(32), nn.BatchNorm2d(32), nn.BatchNorm2d(64)
        self.activation = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(64, BLOCKS[0], stride=1)
        self.layer2 = self._make_layer(128, BLOCKS[1], stride=2)
        self.layer3 = self._make_layer(256, BLOCKS[2], stride=2)
        self.layer_bottleneck = self._make_layer(512, BLOCKS[3], stride=2)
        self._init_backbone()  # before the parts below, which keep their own initialisation (as officially)
        self.shortcut = nn.ModuleList(shortcut_branch(cin, cout) for cin, cout in
                                      ((IN_CHANNELS, 32), (32, 32), (64, 64), (128, 128), (256, 256)))
        self.guidance_head = guidance_head()
        self.gca = GuidedContextualAttention(128, 128)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1:
            downsample = nn.Sequential(nn.AvgPool2d(2, stride), sn_conv(self.inplanes, planes, 1),
                                       nn.BatchNorm2d(planes))
        elif self.inplanes != planes:
            downsample = nn.Sequential(sn_conv(self.inplanes, planes, 1), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_backbone(self) -> None:
        for m in self.modules():
            if isinstance(m, SpectralNorm):
                nn.init.xavier_uniform_(m.module.weight_bar)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock):  # residual branches start at zero
                nn.init.zeros_(m.bn2.weight)
        with torch.no_grad():  # the trimap planes start without influence
            self.conv1.module.weight_bar[:, 3:] = 0

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        out = self.activation(self.bn1(self.conv1(x)))
        x1 = self.activation(self.bn2(self.conv2(out)))  # 32 @ 1/2
        out = self.activation(self.bn3(self.conv3(x1)))  # 64 @ 1/4
        guidance = self.guidance_head(x[:, :3])
        unknown = F.interpolate(x[:, UNKNOWN_CHANNEL:UNKNOWN_CHANNEL + 1], scale_factor=1 / 8, mode="nearest")
        x2 = self.layer1(out)  # 64 @ 1/4
        x3 = self.gca(guidance, self.layer2(x2), unknown)  # 128 @ 1/8
        x4 = self.layer3(x3)  # 256 @ 1/16
        embedding = self.layer_bottleneck(x4)  # 512 @ 1/32
        shortcuts = tuple(branch(f) for branch, f in zip(self.shortcut, (x, x1, x2, x3, x4)))
        return EncoderOutput(embedding, shortcuts, guidance, unknown)
