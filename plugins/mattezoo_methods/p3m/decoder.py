"""The two P3M-Net decoders (segmentation and matting) and how they talk to each other.

The wiring follows the official forward pass (JizhiziLi/P3M
``core/network/P3mNet.py``; ViTAE-Transformer/P3M-Net ``Swin_T/decoder.py``):

* segmentation ("global") decoder: five conv stacks, each ending in a 2×
  upsampling, from 1/32 to full resolution; after stacks 3, 2 and 1 a dBFI
  injects the deepest encoder feature and emits a side output;
* matting ("local") decoder: five conv stacks, each followed by max-unpooling
  with the encoder's pooling indices; before stacks 3..0 a TFI fuses the
  upsampled matting feature with the same-size segmentation-decoder feature and
  encoder skip, and before stacks 2..0 an sBFI injects the full-resolution
  shallow encoder feature.

With a module switched off, its input passes through unchanged (and dBFI's
side outputs disappear): that is the paper's Table 5 ablation, and with all
three off, the BASIC baseline (a shared encoder and two plain decoders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .blocks import DBFI, SBFI, TFI, conv_stack
from .pooling import unpool

# A leaf under torch.fx tracing (mattezoo.nn.fusion): its output size comes from a
# tensor's shape, which a symbolic trace cannot turn into a tuple.
torch.fx.wrap("unpool")


class EncoderFeatures(NamedTuple):
    """What an encoder hands to the decoders.

    ``shallow``: full-resolution feature (sBFI input; also what ``indices[0]``
    pooled). ``skips``: the TFI encoder inputs at 1/2, 1/4, 1/8, 1/16; each
    ``skips[k]`` is also what ``indices[k + 1]`` pooled. ``deep``: the 1/32
    feature both decoders start from (and dBFI's input).
    """

    shallow: torch.Tensor
    skips: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    deep: torch.Tensor
    indices: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class DecoderOutput(NamedTuple):
    global_logits: torch.Tensor  # [B,3,H,W]: background / transition / foreground logits
    local: torch.Tensor  # [B,1,H,W]: matting-decoder alpha (sigmoid)
    sides: tuple[torch.Tensor, ...]  # dBFI side logits [B,3,H,W] at strides 8, 4, 2 (empty without dBFI)


@dataclass(frozen=True)
class DecoderLayout:
    """Channel plan of a backbone's decoders.

    ``global_stacks`` / ``local_stacks`` list the channel sequence of the conv
    stacks ``decoder4 .. decoder0``. ``global_head`` is the input width of a
    separate final 3-class conv (Swin-T), or 0 when ``decoder0_g`` itself ends
    in the 3-class conv (ResNet-34); ``decoder0_g`` ends in a conv without BN
    and ReLU either way. ``tfi`` / ``sbfi`` / ``dbfi`` give the
    block widths at levels 3..0 / 2..0 / 2..0.
    """

    global_stacks: tuple[tuple[int, ...], ...]
    local_stacks: tuple[tuple[int, ...], ...]
    global_head: int
    local_head: int
    tfi: tuple[int, int, int, int]
    sbfi: tuple[int, int, int]
    dbfi: tuple[int, int, int]
    shallow_channels: int
    deep_channels: int
    integration_first: bool  # official registration order (fixes the state_dict key order)


R34_LAYOUT = DecoderLayout(
    global_stacks=((512, 512, 512, 256), (256, 256, 256, 128), (128, 128, 128, 64), (64, 64, 64, 64), (64, 64, 64, 3)),
    local_stacks=((512, 512, 512, 256), (256, 256, 256, 128), (128, 128, 128, 64), (64, 64, 64, 64), (64, 64, 64)),
    global_head=0,
    local_head=64,
    tfi=(256, 128, 64, 64),
    sbfi=(128, 64, 64),
    dbfi=(128, 64, 64),
    shallow_channels=64,
    deep_channels=512,
    integration_first=True,
)

SWIN_T_LAYOUT = DecoderLayout(
    global_stacks=((768, 384, 384, 384), (384, 192, 192, 192), (192, 96, 96, 96), (96, 96, 96, 96), (96, 48, 48, 48)),
    local_stacks=((768, 384, 384, 384), (384, 192, 192, 192), (192, 96, 96, 96), (96, 96, 96, 96), (96, 48, 48)),
    global_head=48,
    local_head=48,
    tfi=(384, 192, 96, 96),
    sbfi=(192, 96, 96),
    dbfi=(192, 96, 96),
    shallow_channels=48,
    deep_channels=768,
    integration_first=False,
)

# Strides of the integration modules at decoder levels 2, 1, 0: sBFI pools the
# full-resolution feature down by these, dBFI upsamples the 1/32 one by these.
_SBFI_STRIDES = (8, 4, 2)
_DBFI_STRIDES = (4, 8, 16)


class DecoderMixin:
    """Adds the decoder modules to an ``nn.Module`` and runs them.

    A mixin rather than a submodule so that the ResNet-34 model keeps the
    official flat key layout (``decoder4_g.0.weight``, ``tfi_3.conv1.weight``).
    """

    def _add_decoder(self, layout: DecoderLayout, *, tfi: bool, sbfi: bool, dbfi: bool) -> None:
        self.use_tfi, self.use_sbfi, self.use_dbfi = bool(tfi), bool(sbfi), bool(dbfi)
        self.pool_backend = "mattezoo"  # of the unpools; see pooling.POOLING_BACKENDS
        if layout.integration_first:
            self._add_integration(layout)
        for level, channels in zip((4, 3, 2, 1, 0), layout.global_stacks):
            # The last stack ends in a plain conv (no BN/ReLU) in both official layouts.
            self.add_module(f"decoder{level}_g", conv_stack(channels, plain_last=level == 0, upsample=True))
        if layout.global_head:
            self.decoder_final_g = nn.Conv2d(layout.global_head, 3, kernel_size=3, padding=1)
        for level, channels in zip((4, 3, 2, 1, 0), layout.local_stacks):
            self.add_module(f"decoder{level}_l", conv_stack(channels))
        self.decoder_final_l = nn.Conv2d(layout.local_head, 1, kernel_size=3, padding=1)
        if not layout.integration_first:
            self._add_integration(layout)

    def _add_integration(self, layout: DecoderLayout) -> None:
        if self.use_tfi:
            for level, planes in zip((3, 2, 1, 0), layout.tfi):
                self.add_module(f"tfi_{level}", TFI(planes))
        if self.use_sbfi:
            for level, planes, stride in zip((2, 1, 0), layout.sbfi, _SBFI_STRIDES):
                self.add_module(f"sbfi_{level}", SBFI(planes, stride, layout.shallow_channels))
        if self.use_dbfi:
            for level, planes, stride in zip((2, 1, 0), layout.dbfi, _DBFI_STRIDES):
                self.add_module(f"dbfi_{level}", DBFI(planes, stride, layout.deep_channels))

    def _decode(self, feats: EncoderFeatures) -> DecoderOutput:
        deep, (s1, s2, s3, s4), shallow = feats.deep, feats.skips, feats.shallow
        id0, id1, id2, id3, id4 = feats.indices
        sides: list[torch.Tensor] = []

        # Segmentation decoder: 1/32 -> 1/16 -> 1/8 (dBFI) -> 1/4 (dBFI) -> 1/2 (dBFI) -> 1.
        g4 = self.decoder4_g(deep)
        g3 = self.decoder3_g(g4)
        g2 = self._dbfi(2, g3, deep, sides)
        g2 = self.decoder2_g(g2)
        g1 = self._dbfi(1, g2, deep, sides)
        g1 = self.decoder1_g(g1)
        g0 = self._dbfi(0, g1, deep, sides)
        global_logits = self.decoder0_g(g0)
        if hasattr(self, "decoder_final_g"):
            global_logits = self.decoder_final_g(global_logits)

        # Matting decoder: every stack is unpooled to the size of the encoder
        # feature its indices came from; TFI guides it with the segmentation
        # feature of that size (g4..g1) and the encoder skip.
        l4 = unpool(self.decoder4_l(deep), id4, s4, self.pool_backend)
        l3 = self._tfi(3, g4, l4, s4)
        l3 = unpool(self.decoder3_l(l3), id3, s3, self.pool_backend)
        l2 = self._sbfi(2, self._tfi(2, g3, l3, s3), shallow)
        l2 = unpool(self.decoder2_l(l2), id2, s2, self.pool_backend)
        l1 = self._sbfi(1, self._tfi(1, g2, l2, s2), shallow)
        l1 = unpool(self.decoder1_l(l1), id1, s1, self.pool_backend)
        l0 = self._sbfi(0, self._tfi(0, g1, l1, s1), shallow)
        l0 = unpool(self.decoder0_l(l0), id0, shallow, self.pool_backend)
        local = torch.sigmoid(self.decoder_final_l(l0))
        return DecoderOutput(global_logits, local, tuple(sides))

    # Each switch is a Python bool fixed at construction, so these branches are
    # static under tracing and torch.compile.
    def _tfi(self, level: int, seg, matting, encoder):
        return getattr(self, f"tfi_{level}")(seg, matting, encoder) if self.use_tfi else matting

    def _sbfi(self, level: int, matting, shallow):
        return getattr(self, f"sbfi_{level}")(matting, shallow) if self.use_sbfi else matting

    def _dbfi(self, level: int, seg, deep, sides: list):
        if not self.use_dbfi:
            return seg
        out, side = getattr(self, f"dbfi_{level}")(seg, deep)
        sides.append(side)
        return out
