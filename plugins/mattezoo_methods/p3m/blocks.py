"""P3M-Net's building blocks: plain conv stacks and the three integration modules.

Layer names and orders follow the official code (JizhiziLi/P3M
``core/network/P3mNet.py``) so that its ``state_dict`` keys load unchanged:
inside a block the attributes are ``transform``/``transform1``/``transform2``
(1×1 projections), ``conv1``/``bn1`` (the fusing 3×3 conv block) and, in dBFI,
``conv2`` (the side-output head).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv1x1(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False)


class Upsample(nn.Module):
    """Bilinear upsampling by an integer factor (``nn.Upsample(scale_factor=s, mode="bilinear")``)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def conv_stack(channels: Sequence[int], *, plain_last: bool = False, upsample: bool = False) -> nn.Sequential:
    """3×3 conv (with bias) + BN + ReLU for each step ``channels[i] -> channels[i+1]``.

    ``plain_last`` leaves the last conv without BN and ReLU (a prediction
    head); ``upsample`` appends a 2× bilinear upsampling. The Sequential's
    indices (conv at 0, 3, 6, ...) are those of the official decoders.
    """
    layers: list[nn.Module] = []
    steps = list(zip(channels[:-1], channels[1:]))
    for i, (c_in, c_out) in enumerate(steps):
        layers.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1))
        if not (plain_last and i == len(steps) - 1):
            layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if upsample:
        layers.append(Upsample(2))
    return nn.Sequential(*layers)


def max_pool_k2(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``F.max_pool2d(x, kernel_size=2, stride=stride)``, faster outside autograd.

    There it is the maximum of the window's four strided views (NaN propagates
    as in max-pooling); aten's CPU max-pool computes indices it then drops and
    took 4x as long on P3M-Net's 64-channel full-resolution feature. Under
    autograd it stays aten's op: ``torch.maximum`` would split the gradient
    of a tie, while max-pooling gives it to the window's first maximum.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return F.max_pool2d(x, kernel_size=2, stride=stride)
    rows, cols = (x.shape[-2] - 2) // stride + 1, (x.shape[-1] - 2) // stride + 1

    def view(dy: int, dx: int) -> torch.Tensor:
        return x[..., dy::stride, dx::stride][..., :rows, :cols]

    return torch.maximum(torch.maximum(view(0, 0), view(0, 1)), torch.maximum(view(1, 0), view(1, 1)))


class TFI(nn.Module):
    """Tripartite-Feature Integration (paper Eq. 1).

    One shared 1×1 projection halves the channels of the segmentation-decoder
    guidance, the matting-decoder feature and the encoder feature (all with
    ``planes`` channels, same size); their concatenation goes through
    3×3 conv + BN + ReLU back to ``planes`` channels.
    """

    def __init__(self, planes: int):
        super().__init__()
        half = planes // 2
        self.transform = conv1x1(planes, half)
        self.conv1 = conv3x3(half * 3, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, seg_guidance: torch.Tensor, matting: torch.Tensor, encoder: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.transform(seg_guidance), self.transform(matting), self.transform(encoder)), 1)
        return self.relu(self.bn1(self.conv1(x)))


class SBFI(nn.Module):
    """Shallow Bipartite-Feature Integration (paper Eq. 2): full-resolution encoder details into the matting decoder.

    The shallow feature (``shallow_planes`` channels, input resolution) is
    max-pooled (kernel 2, stride ``stride``) to the decoder's size; both are
    projected to ``planes/2`` channels, fused by 3×3 conv + BN + ReLU and added
    to the decoder feature as a residual.
    """

    def __init__(self, planes: int, stride: int, shallow_planes: int = 64):
        super().__init__()
        self.stride = stride
        self.transform1 = conv1x1(planes, planes // 2)
        self.transform2 = conv1x1(shallow_planes, planes // 2)
        self.conv1 = conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, matting: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_k2(shallow, self.stride)
        x = torch.cat((self.transform1(matting), self.transform2(pooled)), 1)
        return self.relu(self.bn1(self.conv1(x))) + matting


class DBFI(nn.Module):
    """Deep Bipartite-Feature Integration (paper Eq. 3) plus the segmentation side output.

    The deepest encoder feature (``deep_planes`` channels, 1/32 resolution) is
    projected and upsampled by ``stride`` to the decoder's size, fused with the
    projected decoder feature like sBFI, and added as a residual. ``conv2``
    predicts 3-class side logits, upsampled by ``32 / stride`` to the input size
    (deep supervision in training).
    """

    def __init__(self, planes: int, stride: int, deep_planes: int = 512):
        super().__init__()
        self.stride = stride
        self.transform1 = conv1x1(planes, planes // 2)
        self.transform2 = conv1x1(deep_planes, planes // 2)
        self.conv1 = conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, 3)

    def forward(self, seg: torch.Tensor, deep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deep_up = F.interpolate(self.transform2(deep), scale_factor=self.stride, mode="bilinear", align_corners=False)
        x = torch.cat((self.transform1(seg), deep_up), 1)
        out = self.relu(self.bn1(self.conv1(x))) + seg
        side = F.interpolate(self.conv2(out), scale_factor=32 // self.stride, mode="bilinear", align_corners=False)
        return out, side
