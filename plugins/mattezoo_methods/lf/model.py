"""The Late Fusion CNN (Zhang et al., CVPR 2019), and the factory the registry calls.

* encoder: DenseNet-201 (torchvision layout, :mod:`.densenet`), shared;
* two decoder branches of the same structure, ``fg_decoder`` and
  ``bg_decoder``: from the 1/32 features up to full resolution, each step a
  2x bilinear upsampling concatenated with a 1x1 projection of the encoder's
  skip at that stride (U-Net-like), then two 3x3 conv-BN-ReLU; each ends in
  one channel and a sigmoid: the foreground probability ``F`` and the
  background probability ``B``;
* fusion network: five 3x3 convolutions (BN-ReLU between) on the
  concatenation of the image, ``F``, ``B`` and both decoders' last features,
  ending in a sigmoid: the per-pixel blending weight ``beta``;
* ``alpha = beta * F + (1 - beta) * (1 - B)`` (:func:`late_fusion`).

The authors' code is not public (their README offers it by e-mail / a
download link, and no copy is in the indexed repositories), so the decoder
and fusion widths here are ours; the paper fixes the encoder, the two
sigmoid branches, the fusion inputs and formula. The image is normalised
with the ImageNet mean and standard deviation, as the DenseNet encoder was
pre-trained.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.hybrid import check_image
from mattezoo.weights import load_into, load_state_dict

from .densenet import STEM, DenseNet201, Skips, block_widths, modern_densenet_keys

MULTIPLE = 32  # the encoder halves the size five times
DEFAULT_MAX_SIDE = 1600
DEFAULT_TRIMAP_EPS = 0.01
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Decoder widths from the 1/16 step up to the 1/2 step, and the full-resolution head's width.
DECODER_WIDTHS = (256, 128, 64, 32)
HEAD_WIDTH = 32
FUSION_WIDTHS = (64, 64, 32, 16)


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def late_fusion(beta: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """The paper's fusion: ``beta * F + (1 - beta) * (1 - B)``; in [0,1] whenever its inputs are."""
    return beta * fg + (1.0 - beta) * (1.0 - bg)


class DecoderStep(nn.Module):
    """Upsample 2x, concatenate the projected skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.lateral = conv_bn_relu(skip_channels, out_channels, 1)
        self.conv1 = conv_bn_relu(in_channels + out_channels, out_channels)
        self.conv2 = conv_bn_relu(out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat((x, self.lateral(skip)), 1)))


class Decoder(nn.Module):
    """One probability branch: ``(logits [B,1,H,W], features [B,HEAD_WIDTH,H,W])`` from the skips."""

    def __init__(self):
        super().__init__()
        s2, (s4, s8, s16, s32) = STEM, block_widths()
        self.bottleneck = conv_bn_relu(s32, DECODER_WIDTHS[0], 1)
        ins = (DECODER_WIDTHS[0],) + DECODER_WIDTHS[:-1]
        self.steps = nn.ModuleList(DecoderStep(i, s, o) for i, s, o in zip(ins, (s16, s8, s4, s2), DECODER_WIDTHS))
        self.head = conv_bn_relu(DECODER_WIDTHS[-1], HEAD_WIDTH)
        self.out = nn.Conv2d(HEAD_WIDTH, 1, 3, padding=1)

    def forward(self, skips: Skips, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.bottleneck(skips.s32)
        for step, skip in zip(self.steps, (skips.s16, skips.s8, skips.s4, skips.s2)):
            x = step(x, skip)
        features = self.head(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.out(features), features


class FusionNet(nn.Module):
    """Five 3x3 convolutions from (image, F, B, fg features, bg features) to the blending weight's logits."""

    IN_CHANNELS = 3 + 1 + 1 + 2 * HEAD_WIDTH

    def __init__(self):
        super().__init__()
        widths = (self.IN_CHANNELS,) + FUSION_WIDTHS
        self.layers = nn.Sequential(*(conv_bn_relu(i, o) for i, o in zip(widths[:-1], widths[1:])))
        self.out = nn.Conv2d(FUSION_WIDTHS[-1], 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(x))


class LFOutput(NamedTuple):
    """Everything one forward pass computes (the recipe's losses read all of it)."""

    fg: torch.Tensor  # [B,1,H,W] foreground probability F (sigmoid)
    bg: torch.Tensor  # [B,1,H,W] background probability B (sigmoid)
    beta: torch.Tensor  # [B,1,H,W] blending weight (sigmoid)
    alpha: torch.Tensor  # [B,1,H,W] late_fusion(beta, F, B)
    fg_logits: torch.Tensor  # before the sigmoids: the cross-entropy terms read these (numerically stable)
    bg_logits: torch.Tensor


def check_max_side(max_side) -> int:
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < MULTIPLE:
        raise InvalidOptionError(f"LF max_side must be an int >= {MULTIPLE} (the longest side a pass may have), got {max_side!r}")
    return max_side


def check_trimap_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 < float(eps) < 0.5:
        raise InvalidOptionError(f"LF trimap_eps must be a number in (0, 0.5) (how close to 0/1 the branches must agree), got {eps!r}")
    return float(eps)


def implied_trimap(fg: torch.Tensor, bg: torch.Tensor, eps: float = DEFAULT_TRIMAP_EPS) -> torch.Tensor:
    """The trimap the two branches imply: 1 where both are sure of foreground, 0 where both are sure of background.

    Foreground: ``F >= 1 - eps`` and ``B <= eps``; background: ``B >= 1 - eps``
    and ``F <= eps``; everything else (the branches unsure or disagreeing) is
    unknown, 0.5. The fused alpha is then within ``eps`` of 1 (of 0) on the
    foreground (background), whatever ``beta`` is.
    """
    sure_fg = (fg >= 1.0 - eps) & (bg <= eps)
    sure_bg = (bg >= 1.0 - eps) & (fg <= eps)
    return torch.where(sure_fg, 1.0, torch.where(sure_bg, 0.0, 0.5)).to(torch.float32)


def pad_to_multiple(image: torch.Tensor) -> torch.Tensor:
    """Pad bottom and right to multiples of 32: reflect, or replicate where a side is too short to reflect."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % MULTIPLE, (-width) % MULTIPLE
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Unchanged, or shrunk (aspect kept) so that the longer side is ``max_side``."""
    longer = max(height, width)
    if longer <= max_side:
        return height, width
    return max(1, round(height * max_side / longer)), max(1, round(width * max_side / longer))


class LateFusionMatting(nn.Module):
    """LF. ``forward`` maps ``[B,3,H,W]`` in [0,1] (H, W multiples of 32) to alpha ``[B,1,H,W]``.

    :param max_side: :meth:`infer` shrinks larger images so their longer side is this.
    :param trimap_eps: how sure both branches must be for :meth:`infer_trimap` to call a pixel known.
    """

    def __init__(self, *, max_side: int = DEFAULT_MAX_SIDE, trimap_eps: float = DEFAULT_TRIMAP_EPS):
        super().__init__()
        self.encoder = DenseNet201()
        self.fg_decoder = Decoder()
        self.bg_decoder = Decoder()
        self.fusion = FusionNet()
        self.max_side = check_max_side(max_side)
        self.trimap_eps = check_trimap_eps(trimap_eps)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _check_pass_input(image, what: str) -> None:
        check_image(image, what)
        if image.shape[-2] % MULTIPLE or image.shape[-1] % MULTIPLE:
            raise InputError(f"{what} needs H and W as multiples of {MULTIPLE}, got {tuple(image.shape[-2:])}; "
                             "infer() (and mattezoo.predict) take any size")

    def forward_intermediates(self, image: torch.Tensor) -> LFOutput:
        """F, B, beta and the fused alpha of ``image`` ``[B,3,H,W]`` in [0,1] (H, W multiples of 32)."""
        self._check_pass_input(image, "LF.forward")
        image = image.to(self.mean.dtype)
        x = (image - self.mean) / self.std
        skips = self.encoder(x)
        size = tuple(image.shape[-2:])
        fg_logits, fg_features = self.fg_decoder(skips, size)
        bg_logits, bg_features = self.bg_decoder(skips, size)
        fg, bg = torch.sigmoid(fg_logits), torch.sigmoid(bg_logits)
        beta = torch.sigmoid(self.fusion(torch.cat((x, fg, bg, fg_features, bg_features), 1)))
        return LFOutput(fg, bg, beta, late_fusion(beta, fg, bg), fg_logits, bg_logits)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(image).alpha

    @torch.no_grad()
    def infer_details(self, image: torch.Tensor, max_side: int | None = None) -> LFOutput:
        """:class:`LFOutput` of ``image`` of any size (maps at the image's size; logits at the pass size, cropped)."""
        check_image(image, "LF")
        max_side = self.max_side if max_side is None else check_max_side(max_side)
        height, width = image.shape[-2:]
        size = working_size(height, width, max_side)
        x = image.to(self.mean.dtype)
        if size != (height, width):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0.0, 1.0)
        out = self.forward_intermediates(pad_to_multiple(x))
        maps = [t[..., : size[0], : size[1]] for t in out]
        if size != (height, width):
            maps = [F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False) for t in maps]
            maps[:4] = [t.clamp(0.0, 1.0) for t in maps[:4]]
        return LFOutput(*maps)

    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
        """Alpha ``[B,1,H,W]`` of ``image`` ``[B,3,H,W]`` in [0,1] of any size (padding to 32, ``max_side`` cap)."""
        if trimap is not None:
            raise InputError("LF is trimap-free and takes no trimap; call it without one")
        return self.infer_details(image).alpha

    def infer_trimap(self, image: torch.Tensor) -> torch.Tensor:
        """The trimap the two branches imply (:func:`implied_trimap`), ``[B,1,H,W]`` with 0 / 0.5 / 1."""
        out = self.infer_details(image)
        return implied_trimap(out.fg, out.bg, self.trimap_eps)

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load torchvision's ImageNet DenseNet-201 file (``densenet201-c1103571.pth``) into the encoder, strictly."""
        state = modern_densenet_keys(load_state_dict(path))
        # Files saved before BatchNorm counted its batches (torchvision's own) lack these counters;
        # torch's loader fills them in the same way.
        for key, value in self.encoder.state_dict().items():
            if key.endswith(".num_batches_tracked") and key[: -len("num_batches_tracked")] + "weight" in state:
                state.setdefault(key, torch.zeros_like(value))
        load_into(self.encoder, state, source=f"ImageNet backbone {str(path)!r}")


def build_lf(max_side: int = DEFAULT_MAX_SIDE, trimap_eps: float = DEFAULT_TRIMAP_EPS,
             backbone_weights: str | os.PathLike | None = None) -> LateFusionMatting:
    """Build the Late Fusion CNN.

    :param max_side: longest side one pass may have; larger images are shrunk and the alpha resized back.
    :param trimap_eps: ``infer_trimap`` calls a pixel foreground where ``F >= 1 - eps`` and ``B <= eps``
        (background symmetrically), unknown elsewhere.
    :param backbone_weights: path of torchvision's ImageNet DenseNet-201 state dict (the paper starts from it).
    """
    check_max_side(max_side)
    check_trimap_eps(trimap_eps)
    model = LateFusionMatting(max_side=max_side, trimap_eps=trimap_eps)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
