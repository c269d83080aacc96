"""IndexNet Matting's building blocks, laid out so the ``state_dict`` keys equal the official ones.

Layouts follow poppinace/indexnet_matting ``scripts/`` (``hlmobilenetv2.py``,
``hlindex.py``, ``hlaspp.py``, ``hldecoder.py``, ``hlconv.py``); the official
synchronized BatchNorm is plain :class:`~torch.nn.BatchNorm2d` here (same keys,
same single-device behaviour). Every block is an ``nn.Sequential`` in the
official index order, so ``layer3.1.conv.4.running_var`` names the BatchNorm
after the depthwise conv of the second block of ``layer3``. All convs are
bias-free and every non-linearity is ReLU6.

* ``conv_bn``: k×k conv (padding k//2) → BN → ReLU6; ``dep_sep_conv_bn``:
  depthwise k×k → BN → ReLU6 → 1×1 → BN → ReLU6 (the decoder's two conv
  operators).
* :class:`InvertedResidual`: MobileNetV2's block. Its 3×3 depthwise conv has
  no padding of its own: the input is zero-padded first ("fixed padding", the
  same numbers as padding = dilation). IndexNet sets every stride to 1: the
  encoder downsamples with the learned index blocks instead.
* :class:`IndexBlock`: predicts, from a feature map, an encoder index map
  (softmax over each 2×2 cell of the sigmoid outputs, used before a 2×2
  average pool times 4) and a decoder index map (the sigmoid outputs, used to
  weight a nearest-neighbour upsampling).
* :class:`ASPP`: atrous spatial pyramid pooling with depthwise-separable
  dilated branches, image pooling, a 1×1 bottleneck and dropout 0.5.
* :class:`IndexedUpsampling`: decoder stage: upsample by the decoder index
  map (if any), concatenate the skip features, one conv operator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INDEX_BLOCKS = ("holistic", "depthwise")
INDEX_MODES = ("o2o", "m2o")
CONV_OPERATORS = ("std_conv", "dep_sep_conv")


def conv_bn(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size, 1, padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True))


def dep_sep_conv_bn(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, kernel_size, 1, padding=kernel_size // 2, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch), nn.ReLU6(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True),
    )


def conv_operator(name: str):
    """The decoder's conv block builder for ``name`` (one of :data:`CONV_OPERATORS`)."""
    return {"std_conv": conv_bn, "dep_sep_conv": dep_sep_conv_bn}[name]


class InvertedResidual(nn.Module):
    """MobileNetV2 block with stride 1: [1×1 expand → BN → ReLU6] → 3×3 depthwise → BN → ReLU6 → 1×1 → BN (+ input)."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int, expand_ratio: int):
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        self.dilation = dilation
        self.use_res_connect = in_ch == out_ch
        depthwise = [nn.Conv2d(hidden, hidden, 3, 1, 0, dilation, groups=hidden, bias=False),
                     nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        project = [nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        expand = [] if expand_ratio == 1 else [nn.Conv2d(in_ch, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                               nn.ReLU6(inplace=True)]
        self.conv = nn.Sequential(*expand, *depthwise, *project)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The padding goes around the block's input, before the 1×1 expansion:
        # the expanded border is then ReLU6(BN(0)), not 0, as officially.
        d = self.dilation
        out = self.conv(F.pad(x, (d, d, d, d)))
        return x + out if self.use_res_connect else out


def _index_branch(channels: int, out_channels: int, *, groups: int, nonlinear: bool, context: bool,
                  hidden: int | None = None, wrap_linear: bool) -> nn.Module:
    # With context the index is predicted from a 4×4 window (stride 2, padding 1) instead of the 2×2 cell itself.
    kernel, padding = (4, 1) if context else (2, 0)
    if not nonlinear:
        # The official depthwise blocks keep a linear branch inside a Sequential (key ``indexnet1.0.weight``),
        # the holistic block does not (``indexnet.weight``).
        conv = nn.Conv2d(channels, out_channels, kernel, 2, padding, groups=groups, bias=False)
        return nn.Sequential(conv) if wrap_linear else conv
    hidden = hidden or channels
    return nn.Sequential(
        nn.Conv2d(channels, hidden, kernel, 2, padding, groups=groups, bias=False), nn.BatchNorm2d(hidden),
        nn.ReLU6(inplace=True), nn.Conv2d(hidden, out_channels, 1, groups=groups, bias=False),
    )


class IndexBlock(nn.Module):
    """Learned indices of one 2× downsampling: returns ``(encoder index, decoder index)``, both ``[B,C',H,W]``.

    ``"holistic"``: one index map for all channels (``C' = 1``), from a conv
    to 4 channels (one per cell position), named ``indexnet``. ``"depthwise"``:
    one index map per channel from four branches ``indexnet1..4`` (one per
    cell position); ``"o2o"`` branches are depthwise (each channel predicts its
    own index), ``"m2o"`` branches see all channels. The raw outputs go
    through a sigmoid (decoder index) and then a softmax over the four cell
    positions (encoder index); both are laid out at full resolution by pixel
    shuffling.
    """

    def __init__(self, channels: int, kind: str = "depthwise", mode: str = "m2o", *, nonlinear: bool = True,
                 context: bool = True):
        super().__init__()
        self.kind = kind
        if kind == "holistic":
            # The official holistic non-linear block widens to 2·C before the 1×1 conv down to 4.
            self.indexnet = _index_branch(channels, 4, groups=1, nonlinear=nonlinear, context=context,
                                          hidden=2 * channels, wrap_linear=False)
        else:
            groups = channels if mode == "o2o" else 1
            for i in range(1, 5):
                self.add_module(f"indexnet{i}", _index_branch(channels, channels, groups=groups, nonlinear=nonlinear,
                                                              context=context, wrap_linear=True))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "holistic":
            logits = self.indexnet(x)  # [B,4,h,w]: the four positions of each 2×2 cell
            decoder = torch.sigmoid(logits)
            encoder = F.softmax(decoder, dim=1)
            return F.pixel_shuffle(encoder, 2), F.pixel_shuffle(decoder, 2)
        b, c = x.shape[:2]
        branches = (self.indexnet1, self.indexnet2, self.indexnet3, self.indexnet4)
        logits = torch.stack([branch(x) for branch in branches], dim=2)  # [B,C,4,h,w]
        decoder = torch.sigmoid(logits)
        encoder = F.softmax(decoder, dim=2)
        h, w = logits.shape[-2:]
        # [B,C,4,h,w] -> [B,4C,h,w] keeps each channel's four positions together, as pixel_shuffle expects.
        return (F.pixel_shuffle(encoder.reshape(b, 4 * c, h, w), 2),
                F.pixel_shuffle(decoder.reshape(b, 4 * c, h, w), 2))


def _sep_dilated(in_ch: int, out_ch: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, 1, padding=dilation, dilation=dilation, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch), nn.ReLU6(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True),
    )


class _ASPPBranch(nn.Module):
    """One ASPP branch, with the official wrapper attribute ``atrous_conv``."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int):
        super().__init__()
        if dilation == 1:
            self.atrous_conv = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch),
                                             nn.ReLU6(inplace=True))
        else:
            self.atrous_conv = _sep_dilated(in_ch, out_ch, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.atrous_conv(x)


ASPP_DILATIONS = {32: (1, 2, 4, 8), 16: (1, 6, 12, 18)}


class ASPP(nn.Module):
    """1×1 branch, three depthwise-separable dilated branches and image pooling, 256 channels each; 1×1 to ``out_ch``."""

    def __init__(self, in_ch: int, out_ch: int, output_stride: int = 32, width: int = 256):
        super().__init__()
        for i, dilation in enumerate(ASPP_DILATIONS[output_stride], start=1):
            self.add_module(f"aspp{i}", _ASPPBranch(in_ch, width, dilation))
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Conv2d(in_ch, width, 1, bias=False),
                                             nn.BatchNorm2d(width), nn.ReLU6(inplace=True))
        self.bottleneck_conv = nn.Sequential(nn.Conv2d(5 * width, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch),
                                             nn.ReLU6(inplace=True))
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x)]
        pooled = F.interpolate(self.global_avg_pool(x), size=x.shape[-2:], mode="nearest")
        return self.dropout(self.bottleneck_conv(torch.cat(branches + [pooled], dim=1)))


class IndexedUpsampling(nn.Module):
    """Decoder stage: ``index * nearest_upsample(x)`` (when an index is given), concatenated with the skip, then ``dconv``."""

    def __init__(self, in_ch: int, out_ch: int, operator: str = "std_conv", kernel_size: int = 5):
        super().__init__()
        self.dconv = conv_operator(operator)(in_ch, out_ch, kernel_size)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        if index is not None:
            x = index * F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.dconv(torch.cat((x, skip), dim=1))


def prediction_head(in_ch: int, operator: str, kernel_size: int) -> nn.Sequential:
    """The official ``pred``: a conv operator down to one channel, then a plain k×k conv (no BN, no activation)."""
    return nn.Sequential(conv_operator(operator)(in_ch, 1, kernel_size),
                         nn.Conv2d(1, 1, kernel_size, 1, padding=kernel_size // 2, bias=False))
