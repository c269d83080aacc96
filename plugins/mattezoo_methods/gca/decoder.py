"""The GCA decoder (official ``res_gca_decoder_22``: ``ResGuidedCxtAtten_Dec``).

Four stages of residual up-blocks ``[2, 3, 3, 2]`` (LeakyReLU 0.2, SN convs;
a stage's first block upsamples by an SN transposed conv 4×4/2 and its
identity by nearest upsampling + SN 1×1 conv), each stage's output plus the
encoder's shortcut feature of that scale; the second GCA block between the
1/8 and 1/4 stages; then an SN transposed conv to full size, BN, LeakyReLU,
plus the input-level shortcut, and a 3×3 conv to one channel. The alpha is
``(tanh(x) + 1) / 2``.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import GuidedContextualAttention
from .encoder import EncoderOutput
from .spectral import SpectralNorm

BLOCKS = (2, 3, 3, 2)


def sn_conv(cin: int, cout: int, kernel: int, padding: int = 0) -> SpectralNorm:
    return SpectralNorm(nn.Conv2d(cin, cout, kernel, padding=padding, bias=False))


def sn_up_conv(channels_in: int, channels_out: int) -> SpectralNorm:
    """SN transposed conv 4×4, stride 2, padding 1: doubles the size."""
    return SpectralNorm(nn.ConvTranspose2d(channels_in, channels_out, 4, stride=2, padding=1, bias=False))


class UpBlock(nn.Module):
    """Official decoder ``BasicBlock``: (up-)conv, BN, LeakyReLU, conv, BN, plus the (upsampled) identity."""

    def __init__(self, cin: int, cout: int, stride: int = 1, upsample: nn.Module | None = None):
        super().__init__()
        self.stride = stride
        self.conv1 = sn_up_conv(cin, cin) if stride > 1 else sn_conv(cin, cin, 3, 1)
        self.bn1 = nn.BatchNorm2d(cin)
        self.activation = nn.LeakyReLU(0.2, inplace=True)
        self.conv2 = sn_conv(cin, cout, 3, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.upsample is None else self.upsample(x)
        return self.activation(out + identity)


class GCADecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.inplanes = 512
        self.conv1 = sn_up_conv(32, 32)
        self.bn1 = nn.BatchNorm2d(32)
        self.leaky_relu = nn.LeakyReLU(0.2, inplace=True)
        self.conv2 = nn.Conv2d(32, 1, kernel_size=3, padding=1)
        self.upsample = nn.UpsamplingNearest2d(scale_factor=2)  # unused in forward; kept as in the official module
        self.tanh = nn.Tanh()
        self.layer1 = self._make_layer(256, BLOCKS[0])
        self.layer2 = self._make_layer(128, BLOCKS[1])
        self.layer3 = self._make_layer(64, BLOCKS[2])
        self.layer4 = self._make_layer(32, BLOCKS[3])
        self._init_weights()  # before the GCA block, which keeps its own initialisation (as officially)
        self.gca = GuidedContextualAttention(128, 128)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        upsample = nn.Sequential(nn.UpsamplingNearest2d(scale_factor=2), sn_conv(self.inplanes, planes, 1),
                                 nn.BatchNorm2d(planes))
        layers = [UpBlock(self.inplanes, planes, 2, upsample)]
        self.inplanes = planes
        layers += [UpBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # Officially the loop matches nn.Conv2d only: transposed convs keep torch's default initialisation.
        for m in self.modules():
            if isinstance(m, SpectralNorm) and isinstance(m.module, nn.Conv2d):
                nn.init.xavier_uniform_(m.module.weight_bar)
            elif isinstance(m, nn.Conv2d) and hasattr(m, "weight"):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, UpBlock):  # residual branches start at zero
                nn.init.zeros_(m.bn2.weight)

    def logits(self, enc: EncoderOutput) -> torch.Tensor:
        """The final conv's output ``[B,1,H,W]``, before ``tanh``."""
        fea1, fea2, fea3, fea4, fea5 = enc.shortcuts
        x = self.layer1(enc.embedding) + fea5  # 256 @ 1/16
        x = self.layer2(x) + fea4  # 128 @ 1/8
        x = self.gca(enc.guidance, x, enc.unknown)
        x = self.layer3(x) + fea3  # 64 @ 1/4
        x = self.layer4(x) + fea2  # 32 @ 1/2
        x = self.leaky_relu(self.bn1(self.conv1(x))) + fea1  # 32 @ 1
        return self.conv2(x)

    def forward(self, enc: EncoderOutput) -> torch.Tensor:
        return (self.tanh(self.logits(enc)) + 1.0) / 2.0
