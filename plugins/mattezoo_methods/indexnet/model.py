"""IndexNet Matting (Lu et al., ICCV 2019) and the factory the registry calls.

The network is the official ``hlMobileNetV2UNetDecoderIndexLearning``
(poppinace/indexnet_matting ``scripts/hlmobilenetv2.py``) with the released
configuration of ``demo.py`` and ``train.sh``: depthwise many-to-one (``m2o``)
index blocks with the non-linear and context options, ASPP, output stride 32,
standard 5×5 conv decoder. Attribute names equal the official ones, so the
released ``indexnet_matting.pth.tar`` loads with ``strict=True``.

* encoder: MobileNetV2 (``layer0`` .. ``layer7``) on a 4-channel input (RGB
  and trimap), every stride set to 1; after ``layer0``, ``layer2``,
  ``layer3``, ``layer4`` and ``layer6`` an index block (``index0`` ...)
  predicts encoder and decoder index maps; the features are multiplied by the
  encoder index and pooled (4 × 2×2 average pool, i.e. the index-weighted sum
  of each cell);
* context: ASPP on the 1/32 features (``dconv_pp``, 320 -> 160 channels);
* decoder: seven ``IndexedUpsampling`` stages (``decoder_layer6`` ..
  ``decoder_layer0``): decoder index × nearest upsampling where the encoder
  pooled, concatenated with the index-weighted encoder features, 5×5 conv;
* ``pred``: 5×5 conv-BN-ReLU6 to one channel and a final 5×5 conv. The raw
  output is not squashed; the test procedure clips it.

Other official options come cheaply and are offered: holistic or depthwise
one-to-one index blocks, linear / context-free index blocks, a 1×1 conv
instead of ASPP, output stride 16, depthwise-separable decoder convs, other
decoder kernel sizes.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mattezoo import checks
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo.weights import load_state_dict

from . import inference
from .blocks import (
    ASPP, CONV_OPERATORS, INDEX_BLOCKS, INDEX_MODES, IndexBlock, IndexedUpsampling, InvertedResidual, conv_bn,
    prediction_head,
)

OUTPUT_STRIDES = (32, 16)
# MobileNetV2's inverted-residual stages: (expand ratio, input channels, output channels, blocks, ImageNet stride).
MOBILENET_V2_STAGES = ((1, 32, 16, 1, 1), (6, 16, 24, 2, 2), (6, 24, 32, 3, 2), (6, 32, 64, 4, 2),
                       (6, 64, 96, 3, 1), (6, 96, 160, 3, 2), (6, 160, 320, 1, 1))
POOLED_STAGES = (2, 3, 4, 6)  # stages whose output an index block pools (besides layer0)
# Decoder stages from the deepest: (input channels = 2 × the skip's, output channels).
DECODER_STAGES = ((6, 320, 96), (5, 192, 64), (4, 128, 32), (3, 64, 24), (2, 48, 16), (1, 32, 32), (0, 64, 32))


def stage_dilations(output_stride: int) -> list[tuple[int, int]]:
    """``(first block, other blocks)`` dilation of each MobileNetV2 stage, as the official builder derives them.

    Strides are all 1 (the index blocks downsample); once the ImageNet stride
    reaches ``output_stride``, the further strides become dilation; a stage
    that the index blocks pool starts at half its dilation.
    """
    current, rate, out = 2, 1, []
    for number, (*_, stride) in enumerate(MOBILENET_V2_STAGES, start=1):
        if current == output_stride:
            rate *= stride
            dilation = rate
        else:
            current *= stride
            dilation = 1
        first = max(1, dilation // 2) if number in POOLED_STAGES else dilation
        out.append((first, dilation))
    return out


class IndexNetOutput(NamedTuple):
    raw: torch.Tensor  # [B,1,H,W] the network's output, unclipped (what the official losses read)
    alpha: torch.Tensor  # [B,1,H,W] clipped to [0,1], the trimap's known pixels set to 0 / 1


class IndexNetMatting(nn.Module):
    """IndexNet Matting. ``forward(image, trimap)`` maps ``[B,3,H,W]`` in [0,1] (H, W multiples of the output
    stride) and ``[B,1,H,W]`` (0 / 0.5 / 1) to alpha; :meth:`infer` takes any size."""

    def __init__(self, *, indexnet: str = "depthwise", index_mode: str = "m2o", use_nonlinear: bool = True,
                 use_context: bool = True, apply_aspp: bool = True, output_stride: int = 32,
                 conv_operator: str = "std_conv", decoder_kernel_size: int = 5,
                 max_side: int = inference.DEFAULT_MAX_SIDE):
        super().__init__()
        self.output_stride = output_stride
        self.max_side = checks.check_max_side(max_side, "IndexNet")
        self.layer0 = conv_bn(4, 32, 3)
        for number, ((expand, c_in, c_out, blocks, _), (first, rest)) in enumerate(
                zip(MOBILENET_V2_STAGES, stage_dilations(output_stride)), start=1):
            self.add_module(f"layer{number}", nn.Sequential(*(
                InvertedResidual(c_in if i == 0 else c_out, c_out, first if i == 0 else rest, expand)
                for i in range(blocks))))
        pooled = {0: 32, 2: 24, 3: 32, 4: 64, 6: 160}
        if output_stride == 16:
            del pooled[6]  # the last stage stays at 1/16 and dilates instead
        options = dict(kind=indexnet, mode=index_mode, nonlinear=use_nonlinear, context=use_context)
        for number, channels in pooled.items():
            self.add_module(f"index{number}", IndexBlock(channels, **options))
        self.dconv_pp = ASPP(320, 160, output_stride) if apply_aspp else conv_bn(320, 160, 1)
        for number, c_in, c_out in DECODER_STAGES:
            self.add_module(f"decoder_layer{number}", IndexedUpsampling(c_in, c_out, conv_operator, decoder_kernel_size))
        self.pred = prediction_head(32, conv_operator, decoder_kernel_size)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        # The official initialisation of the whole network (the ASPP's and the
        # decoders' own Kaiming init runs first there and is overwritten by it).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # --- the network ----------------------------------------------------------------------

    def _pool(self, number: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Index-weighted features (the decoder's skip), their pooled half-size map and the decoder index."""
        encoder_index, decoder_index = getattr(self, f"index{number}")(x)
        x = encoder_index * x
        return x, 4 * F.avg_pool2d(x, (2, 2), stride=2), decoder_index

    def forward_network(self, x: torch.Tensor) -> torch.Tensor:
        """The official module's forward: normalised ``[B,4,H,W]`` (H, W multiples of the stride) -> raw ``[B,1,H,W]``."""
        l0, p0, i0 = self._pool(0, self.layer0(x))
        l1 = self.layer1(p0)
        l2, p2, i2 = self._pool(2, self.layer2(l1))
        l3, p3, i3 = self._pool(3, self.layer3(p2))
        l4, p4, i4 = self._pool(4, self.layer4(p3))
        l5 = self.layer5(p4)
        l6 = self.layer6(l5)
        if self.output_stride == 32:
            l6, p6, i6 = self._pool(6, l6)
        else:
            p6, i6 = l6, None
        d = self.dconv_pp(self.layer7(p6))
        d = self.decoder_layer6(d, l6, i6)
        d = self.decoder_layer5(d, l5)
        d = self.decoder_layer4(d, l4, i4)
        d = self.decoder_layer3(d, l3, i3)
        d = self.decoder_layer2(d, l2, i2)
        d = self.decoder_layer1(d, l1)
        d = self.decoder_layer0(d, l0, i0)
        return self.pred(d)

    # --- public passes --------------------------------------------------------------------

    def _check_pass_input(self, image, trimap, what: str) -> None:
        checks.check_image(image, what)
        checks.check_trimap(trimap, image, what)
        stride = self.output_stride
        if image.shape[-2] % stride or image.shape[-1] % stride:
            raise InputError(f"{what} needs H and W as multiples of {stride}, got {tuple(image.shape[-2:])}; "
                             "infer() takes any size")

    def forward_intermediates(self, image: torch.Tensor, trimap: torch.Tensor) -> IndexNetOutput:
        """Raw prediction and alpha of ``image`` ``[B,3,H,W]`` in [0,1] with ``trimap`` (H, W multiples of the stride)."""
        self._check_pass_input(image, trimap, "IndexNet.forward")
        raw = self.forward_network(inference.encode_input(image, trimap))
        alpha = torch.where(trimap == 0.5, raw.clamp(0.0, 1.0), trimap.to(raw.dtype))
        return IndexNetOutput(raw, alpha)

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """Alpha ``[B,1,H,W]``: the clipped prediction on the trimap's unknown pixels, its 0 / 1 elsewhere."""
        return self.forward_intermediates(image, trimap).alpha

    @torch.no_grad()
    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None, *, max_side: int | None = None) -> torch.Tensor:
        """Alpha ``[B,1,H,W]`` of an image of any size by the official test procedure (:mod:`.inference`)."""
        return inference.infer(self, image, trimap, self.max_side if max_side is None else max_side)

    # --- ImageNet backbone ----------------------------------------------------------------

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load the ImageNet MobileNetV2 the official training starts from (CSAIL's ``mobilenet_v2.pth.tar``).

        Its ``features.N`` keys map onto ``layer0`` .. ``layer7`` (the
        official ``CORRESP_NAME`` table); the first conv gets the RGB filters
        and zeros for the trimap channel. Its last 1×1 conv and classifier are
        not used. Every encoder key must be present.
        """
        source = load_state_dict(path)
        own = self.state_dict()
        mapped = {}
        for ours, theirs in backbone_key_map().items():
            if theirs not in source:
                continue
            value = source[theirs]
            if ours == "layer0.0.weight" and value.ndim == 4 and value.shape[1] == 3:
                value = torch.cat((value, torch.zeros_like(value[:, :1])), dim=1)
            mapped[ours] = value
        missing = sorted(set(backbone_key_map()) - set(mapped))
        if missing:
            shown = ", ".join(backbone_key_map()[k] for k in missing[:6])
            raise CheckpointError(f"ImageNet backbone {str(path)!r} lacks {len(missing)} MobileNetV2 keys: {shown}"
                                  + (" ..." if len(missing) > 6 else ""))
        shapes = [f"{backbone_key_map()[k]}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
                  for k, v in mapped.items() if v.shape != own[k].shape]
        if shapes:
            raise CheckpointError(f"ImageNet backbone {str(path)!r} does not fit the encoder: {', '.join(shapes[:6])}")
        with torch.no_grad():
            for key, value in mapped.items():
                own[key].copy_(value)


def backbone_key_map() -> dict[str, str]:
    """Our encoder key -> the ImageNet MobileNetV2 key (``features.N...``), for every weight and BN statistic."""
    out = {}
    leaves = ("weight", "bias", "running_mean", "running_var")
    out["layer0.0.weight"] = "features.0.0.weight"
    for leaf in leaves:
        out[f"layer0.1.{leaf}"] = f"features.0.1.{leaf}"
    feature = 1
    for number, (expand, _, _, blocks, _) in enumerate(MOBILENET_V2_STAGES, start=1):
        convs, norms = ((0, 3), (1, 4)) if expand == 1 else ((0, 3, 6), (1, 4, 7))
        for block in range(blocks):
            for conv in convs:
                out[f"layer{number}.{block}.conv.{conv}.weight"] = f"features.{feature}.conv.{conv}.weight"
            for norm in norms:
                for leaf in leaves:
                    out[f"layer{number}.{block}.conv.{norm}.{leaf}"] = f"features.{feature}.conv.{norm}.{leaf}"
            feature += 1
    return out


def _check_options(indexnet, index_mode, output_stride, conv_operator, decoder_kernel_size) -> None:
    if indexnet not in INDEX_BLOCKS:
        raise InvalidOptionError(f"unknown indexnet {indexnet!r}; valid: {', '.join(INDEX_BLOCKS)}")
    if index_mode not in INDEX_MODES:
        raise InvalidOptionError(f"unknown index_mode {index_mode!r}; valid: {', '.join(INDEX_MODES)}")
    if output_stride not in OUTPUT_STRIDES:
        raise InvalidOptionError(f"unsupported output_stride {output_stride!r}; valid: 32, 16")
    if conv_operator not in CONV_OPERATORS:
        raise InvalidOptionError(f"unknown conv_operator {conv_operator!r}; valid: {', '.join(CONV_OPERATORS)}")
    if isinstance(decoder_kernel_size, bool) or not isinstance(decoder_kernel_size, int) or decoder_kernel_size < 1 \
            or decoder_kernel_size % 2 == 0:
        raise InvalidOptionError(f"decoder_kernel_size must be an odd positive int (5 officially), got {decoder_kernel_size!r}")


def build_indexnet(indexnet: str = "depthwise", index_mode: str = "m2o", use_nonlinear: bool = True,
                   use_context: bool = True, apply_aspp: bool = True, output_stride: int = 32,
                   conv_operator: str = "std_conv", decoder_kernel_size: int = 5,
                   max_side: int = inference.DEFAULT_MAX_SIDE,
                   backbone_weights: str | os.PathLike | None = None) -> IndexNetMatting:
    """Build IndexNet Matting; the defaults are the released model's configuration (official option names).

    :param indexnet: ``"depthwise"`` (released) or ``"holistic"`` index blocks.
    :param index_mode: depthwise blocks: ``"m2o"`` (released, each channel's
        index from all channels) or ``"o2o"`` (from its own channel).
    :param use_nonlinear: index blocks with a hidden conv-BN-ReLU6 layer (released: True).
    :param use_context: index blocks read a 4×4 window instead of the 2×2 cell (released: True).
    :param apply_aspp: ASPP on the deepest features (released: True), else a 1×1 conv.
    :param output_stride: 32 (released) or 16 (the last stage dilates instead of pooling).
    :param conv_operator: decoder convs, ``"std_conv"`` (released) or ``"dep_sep_conv"``.
    :param decoder_kernel_size: decoder and prediction kernel size (released: 5).
    :param max_side: cap on the working size of :meth:`~IndexNetMatting.infer` (no cap officially).
    :param backbone_weights: path of CSAIL's ImageNet ``mobilenet_v2.pth.tar``,
        loaded into the encoder (the official training starts from it).
    """
    _check_options(indexnet, index_mode, output_stride, conv_operator, decoder_kernel_size)
    model = IndexNetMatting(indexnet=indexnet, index_mode=index_mode, use_nonlinear=bool(use_nonlinear),
                            use_context=bool(use_context), apply_aspp=bool(apply_aspp), output_stride=output_stride,
                            conv_operator=conv_operator, decoder_kernel_size=decoder_kernel_size, max_side=max_side)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
