"""FBA's encoder: a dilated ResNet-50 with group normalisation and weight standardisation.

Structure and attribute names follow the official ``networks/resnet_GN_WS.py``,
``networks/layers_WS.py`` and ``ResnetDilated`` in ``networks/models.py``
(MarcoForte/FBA_Matting), so the ``state_dict`` keys are the official ones:

* every convolution of the trunk and of the decoder's GN blocks is a
  weight-standardised convolution (:class:`WSConv2d`), every normalisation a
  ``GroupNorm`` of 32 groups (the official ``bn*`` names are kept, though they
  are group norms);
* ``conv1`` takes 11 channels (image, distance-transform trimap, two-channel
  trimap); the official stem max-pool also returns its indices, which its
  decoder never reads, so they are not computed here;
* layer3 and layer4 run without stride, dilated by 2 and 4 (output stride 8):
  the strided 3×3 conv of each stage's first block gets half the dilation,
  the 1×1 downsampling convs just lose their stride, exactly as the official
  ``_nostride_dilate`` rewrites torchvision's layout;
* the ImageNet classifier (``avgpool``, ``fc``) of the official ResNet is
  dropped by ``ResnetDilated``, so it has no keys here either.

Weight standardisation, and how it differs from the official layer: the
official ``Conv2d`` overwrites its stored weight with the standardised one
(zero mean, unit biased variance per output channel, eps 1e-5) whenever
``train()`` / ``eval()`` is called and on every training forward, so its eval
pass convolves with ``standardise(loaded weight)``. :class:`WSConv2d`
standardises on the fly in every pass and never changes the parameter: the eval
output is the same (the released weights are standardised already, so
standardising again changes them by ~1e-5 relative), the ``state_dict`` stays
what was loaded, and training back-propagates through the standardisation
(Qiao et al.'s weight standardisation; the official in-place form skips it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WS_EPS = 1e-5  # the official layer's batch_norm epsilon
GN_GROUPS = 32
STAGE_BLOCKS = (3, 4, 6, 3)  # ResNet-50
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
INPUT_CHANNELS = 3 + 6 + 2  # normalised image, distance-transform trimap, two-channel trimap


def standardise(weight: torch.Tensor, eps: float = WS_EPS) -> torch.Tensor:
    """Per output channel: subtract the mean, divide by ``sqrt(biased variance + eps)``.

    Computed as the official layer computes it (a training-mode batch norm
    over the ``[1, C_out, fan_in]`` view), so the standardised weights are
    bit for bit the official ones.
    """
    flat = weight.reshape(1, weight.shape[0], -1)
    return F.batch_norm(flat, None, None, training=True, momentum=0.0, eps=eps).reshape_as(weight)


class WSConv2d(nn.Conv2d):
    """A convolution whose weight is standardised in every forward pass (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, standardise(self.weight), self.bias, self.stride, self.padding, self.dilation, self.groups)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GN_GROUPS, channels)


class Bottleneck(nn.Module):
    """The ResNet-50 bottleneck (1×1, 3×3, 1×1), GN + WS, with the stride on the 3×3 conv."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = WSConv2d(inplanes, planes, 1, bias=False)
        self.bn1 = group_norm(planes)
        self.conv2 = WSConv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = group_norm(planes)
        self.conv3 = WSConv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = group_norm(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _stage(inplanes: int, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    """One ResNet stage. ``dilation`` > 1 replaces the stride: first block at ``dilation // 2``, the rest at ``dilation``."""
    out = planes * EXPANSION
    first_stride = stride if dilation == 1 else 1
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(WSConv2d(inplanes, out, 1, stride=first_stride, bias=False), group_norm(out))
    first_dilation = max(1, dilation // 2)
    layers = [Bottleneck(inplanes, planes, first_stride, first_dilation, downsample)]
    layers += [Bottleneck(out, planes, 1, dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class DilatedResNet50(nn.Module):
    """The encoder: 11-channel stem, four stages, output stride 8. Returns the features the decoder reads."""

    def __init__(self):
        super().__init__()
        self.conv1 = WSConv2d(INPUT_CHANNELS, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = group_norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        # (stride, dilation) per stage: layer3 and layer4 trade their stride for dilation 2 and 4.
        plan = ((1, 1), (2, 1), (2, 2), (2, 4))
        inplanes = 64
        for index, (planes, blocks, (stride, dilation)) in enumerate(zip(STAGE_WIDTHS, STAGE_BLOCKS, plan), start=1):
            self.add_module(f"layer{index}", _stage(inplanes, planes, blocks, stride, dilation))
            inplanes = planes * EXPANSION

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(stem features 64 @ 1/2, layer1 256 @ 1/4, layer4 2048 @ 1/8)``: all the decoder uses."""
        stem = self.relu(self.bn1(self.conv1(x)))
        quarter = self.layer1(self.maxpool(stem))
        deep = self.layer4(self.layer3(self.layer2(quarter)))
        return stem, quarter, deep
