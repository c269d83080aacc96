"""AlphaGAN's encoder: a dilated ResNet-50 on image + trimap, with torchvision's module names.

The layout is torchvision's ``resnet50`` without ``avgpool``/``fc``:
``conv1``, ``bn1``, ``layer1`` .. ``layer4`` of ``Bottleneck`` blocks with
``conv1..3``, ``bn1..3`` and ``downsample.0/1``. So an ImageNet
``resnet50-*.pth`` loads with :meth:`DilatedResNet50.load_imagenet`, its
first convolution widened from 3 to 4 input channels (the extra trimap
channel starts at zero, so the pretrained filters see what they saw before).

Dilation (paper: the last two ResNet blocks dilated, features kept at 1/8):
``layer3`` and ``layer4`` use stride 1 and dilation 2 and 4, the way
torchvision's ``replace_stride_with_dilation=[False, True, True]`` (DeepLab
v3's output stride 8) does it: the first block of a dilated stage keeps the
previous stage's dilation, the others take the new one.

The max-pooling after the stem returns its indices (through
:func:`mattezoo.ops.max_pool2d_with_indices`): the decoder unpools with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import nn

from mattezoo.errors import CheckpointError
from mattezoo.ops import max_pool2d_with_indices
from mattezoo.weights import load_into

IN_CHANNELS = 4  # RGB + trimap
STAGES = ((64, 3, 1, False), (128, 4, 2, False), (256, 6, 2, True), (512, 3, 2, True))  # planes, blocks, stride, dilate


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3×3 conv), with a dilation."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class EncoderFeatures(NamedTuple):
    stem: torch.Tensor  # [B,64,H/2,W/2] after conv1 + BN + ReLU (the decoder's 1/2 skip)
    pool_indices: torch.Tensor  # [B,64,H/4,W/4] where each max of the first pooling came from
    layer1: torch.Tensor  # [B,256,H/4,W/4] (the decoder's 1/4 skip)
    out: torch.Tensor  # [B,2048,H/8,W/8] layer4


class DilatedResNet50(nn.Module):
    """ResNet-50 with a 4-channel stem and output stride 8."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(IN_CHANNELS, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        inplanes, dilation = 64, 1
        for index, (planes, blocks, stride, dilate) in enumerate(STAGES, start=1):
            previous = dilation
            if dilate:
                dilation, stride = dilation * stride, 1
            downsample = None
            if stride != 1 or inplanes != planes * Bottleneck.expansion:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(planes * Bottleneck.expansion))
            layers = [Bottleneck(inplanes, planes, stride, previous, downsample)]
            inplanes = planes * Bottleneck.expansion
            layers += [Bottleneck(inplanes, planes, 1, dilation) for _ in range(1, blocks)]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        stem = self.relu(self.bn1(self.conv1(x)))
        pooled, indices = max_pool2d_with_indices(stem, 3, 2, 1)
        layer1 = self.layer1(pooled)
        out = self.layer4(self.layer3(self.layer2(layer1)))
        return EncoderFeatures(stem, indices, layer1, out)

    def load_imagenet(self, state: Mapping[str, torch.Tensor], source: str = "ImageNet ResNet-50") -> None:
        """Load torchvision's ImageNet ResNet-50 ``state_dict`` strictly, widening ``conv1`` to the trimap channel.

        ``fc.weight``/``fc.bias`` (the classifier, which the encoder has no
        use for) are dropped; every other key must match torchvision's layout
        exactly. A ``conv1.weight`` with 3 input channels gets a zero 4th one.
        """
        state = dict(state)
        for key in ("fc.weight", "fc.bias"):
            state.pop(key, None)
        stem = state.get("conv1.weight")
        if stem is not None and stem.ndim == 4 and stem.shape[1] == 3:
            state["conv1.weight"] = torch.cat([stem, stem.new_zeros(stem.shape[0], 1, *stem.shape[2:])], dim=1)
        elif stem is not None and (stem.ndim != 4 or stem.shape[1] != IN_CHANNELS):
            raise CheckpointError(f"{source}: conv1.weight has shape {tuple(stem.shape)}; expected (64, 3, 7, 7) "
                                  f"(ImageNet RGB) or (64, 4, 7, 7) (already widened for the trimap)")
        load_into(self, state, source=source)
