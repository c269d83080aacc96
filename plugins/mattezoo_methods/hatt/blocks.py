"""HAttMatting's building blocks: the ResNeXt-101 backbone, ASPP, the two attentions, the discriminator.

* :class:`ResNeXt101`: torchvision's ``resnext101_32x8d`` layout (``conv1``,
  ``bn1``, ``layer1..4``, ``fc``; blocks of 1×1 → grouped 3×3 (32 groups of
  8·k channels) → 1×1 with BatchNorm), so torchvision's (or timm's) ImageNet
  file loads into it with ``strict=True``. ``layer4`` trades its stride for
  dilation 2 (output stride 16), as DeepLabv3 runs ASPP; its first block keeps
  dilation 1 in the grouped conv, the others use 2 (torchvision's
  ``replace_stride_with_dilation`` and timm's ``output_stride=16`` agree).
  ``fc`` is kept, unused, only so the ImageNet file fits.
* :class:`ASPP`: DeepLabv3's atrous spatial pyramid pooling (1×1, three
  dilated 3×3 at rates 6/12/18, image pooling; 1×1 projection).
* :class:`ChannelAttention`: the paper's pyramidal features distillation, a
  squeeze-and-excitation gate (global average pool → FC → ReLU → FC →
  sigmoid) that reweights the ASPP channels.
* :class:`SpatialAttention`: the paper's appearance cues filtration gate, two
  separable large-kernel paths (1×k then k×1, and k×1 then 1×k) on the
  distilled high-level features, summed, sigmoid: one weight per pixel.
* :class:`PatchDiscriminator`: pix2pix's 70×70 PatchGAN (three stride-2 4×4
  convs, one stride-1, a 1-channel 4×4 output; LeakyReLU 0.2, BatchNorm after
  all but the first), conditioned on the image: it reads ``[image, alpha]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESNEXT101_DEPTHS = (3, 4, 23, 3)
RESNEXT_GROUPS, RESNEXT_GROUP_WIDTH = 32, 8  # "32x8d"
EXPANSION = 4


class Bottleneck(nn.Module):
    """ResNeXt bottleneck with torchvision's attribute names."""

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        width = planes * RESNEXT_GROUP_WIDTH // 64 * RESNEXT_GROUPS
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation,
                               groups=RESNEXT_GROUPS, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNeXt101(nn.Module):
    """ResNeXt-101 (32×8d) with a dilated ``layer4``; :meth:`features` gives (block1, block4)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = 64
        for index, (planes, depth) in enumerate(zip((64, 128, 256, 512), RESNEXT101_DEPTHS)):
            dilated = index == 3
            stride = 1 if index == 0 or dilated else 2
            out_ch = planes * EXPANSION
            downsample = None
            if stride != 1 or in_ch != out_ch:
                downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
            blocks = [Bottleneck(in_ch, planes, stride, 1, downsample)]
            blocks += [Bottleneck(out_ch, planes, 1, 2 if dilated else 1) for _ in range(depth - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
            in_ch = out_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)  # only so that ImageNet files load strictly

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(block1 [B,256,H/4,W/4], block4 [B,2048,H/16,W/16])`` of a normalised image."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        block1 = self.layer1(x)
        return block1, self.layer4(self.layer3(self.layer2(block1)))


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int | tuple[int, int] = 3, dilation: int = 1) -> nn.Sequential:
    """conv (no bias: BatchNorm follows, ``same`` padding) → BN → ReLU."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    padding = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, (kh, kw), padding=padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    """DeepLabv3's ASPP: ``branches`` (1×1, 3×3 at each rate, image pooling), concatenated, ``project``ed.

    The image-pooling branch is conv (with bias) + ReLU without BatchNorm:
    BatchNorm over a 1×1 map cannot train on a batch of one image.
    """

    def __init__(self, in_ch: int = 2048, out_ch: int = 256, rates: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(in_ch, out_ch, 1)] + [conv_bn_relu(in_ch, out_ch, 3, r) for r in rates])
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1), nn.ReLU(inplace=True))
        self.project = conv_bn_relu(out_ch * (len(rates) + 2), out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        outs.append(self.pooling(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, 1))


class ChannelAttention(nn.Module):
    """Pyramidal features distillation: ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))`` per channel."""

    def __init__(self, channels: int = 256, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The ``[B,C]`` channel weights in (0, 1)."""
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights(x)
        return x * w[:, :, None, None], w


class SpatialAttention(nn.Module):
    """Appearance cues filtration gate: ``sigmoid(row_col(x) + col_row(x))``, ``[B,1,H,W]``.

    ``row_col`` is a 1×k conv (to C/2, BN, ReLU) then a k×1 conv (to 1, BN);
    ``col_row`` the same in the other order. The last BN has no ReLU after it,
    so the gate can close (a ReLU there would keep every weight ≥ 0.5).
    """

    def __init__(self, channels: int = 256, kernel: int = 7):
        super().__init__()
        half = channels // 2

        def path(first: tuple[int, int], second: tuple[int, int]) -> nn.Sequential:
            return nn.Sequential(
                *conv_bn_relu(channels, half, first),
                nn.Conv2d(half, 1, second, padding=(second[0] // 2, second[1] // 2), bias=False), nn.BatchNorm2d(1),
            )

        self.row_col = path((1, kernel), (kernel, 1))
        self.col_row = path((kernel, 1), (1, kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.row_col(x) + self.col_row(x))


class PatchDiscriminator(nn.Module):
    """pix2pix's 70×70 PatchGAN on ``[image (3), alpha (1)]``: a map of real/fake logits."""

    def __init__(self, in_ch: int = 4, width: int = 64):
        super().__init__()
        chans = (width, width * 2, width * 4, width * 8)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, chans[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        for prev, cur, stride in zip(chans, chans[1:], (2, 2, 1)):
            layers += [nn.Conv2d(prev, cur, 4, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cur),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(chans[-1], 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat((image, alpha), 1))
