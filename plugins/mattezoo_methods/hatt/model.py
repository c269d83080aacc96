"""HAttMatting (Qiao et al., CVPR 2020), and the factory the registry calls.

The authors' repository (wukaoliu/CVPR2020-HAttMatting) holds only the
README, result pictures and a data-composition script: no network, no
checkpoint. The network is therefore built from the paper's description,
with the widths the paper leaves open chosen here (docs/hatt.md lists them):

1. feature extraction: ResNeXt-101 (32×8d, ImageNet layout) gives the
   appearance cues (block1, 256 channels at 1/4) and the high-level features
   (block4, 2048 at 1/16, ``layer4`` dilated); ASPP turns block4 into 256
   pyramidal features;
2. pyramidal features distillation: channel-wise attention (a
   squeeze-and-excitation gate) reweights them; they are upsampled to 1/4 and
   pass a 3×3 conv;
3. appearance cues filtration: a spatial attention map computed from the
   distilled features multiplies the (3×3-conv'd) block1 features, which
   suppresses the texture inside the foreground and background and keeps
   that of the boundary;
4. fusion: the filtered cues and the distilled features, concatenated, pass
   three 3×3 convs to one logit map at 1/4, upsampled (bilinear) to the image
   and squashed by a sigmoid: the alpha matte.

The PatchGAN discriminator of the adversarial loss is the submodule
``discriminator`` (``discriminator=False`` leaves it out): ``forward`` and
``infer`` never run it; only the training recipe does. It lives in the model
so that the training engine's checkpoints save and resume it with the rest.

Images are normalised with the ImageNet mean and standard deviation, as the
ImageNet-trained backbone expects.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mattezoo import checks
from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.weights import load_into, load_state_dict

from . import inference
from .blocks import ASPP, ChannelAttention, PatchDiscriminator, ResNeXt101, SpatialAttention, conv_bn_relu

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURES = 256  # ASPP output, distilled features and filtered cues
SPATIAL_KERNEL = 7  # k of the 1×k / k×1 convs of the spatial attention
CHANNEL_REDUCTION = 16  # squeeze-and-excitation ratio of the channel attention


class HAttOutput(NamedTuple):
    """Everything one forward pass computes."""

    logits: torch.Tensor  # [B,1,H,W] alpha before the sigmoid
    alpha: torch.Tensor  # [B,1,H,W] in [0,1]
    spatial_attention: torch.Tensor  # [B,1,H/4,W/4] appearance cues filtration weights in (0,1)
    channel_weights: torch.Tensor  # [B,256] pyramidal features distillation weights in (0,1)


class HAttMatting(nn.Module):
    """HAttMatting: ``forward`` maps ``[B,3,H,W]`` in [0,1] (H, W multiples of 16) to alpha ``[B,1,H,W]``.

    :param max_side: longest side :meth:`infer` runs at; larger images are
        shrunk for the pass and the matte is resized back.
    :param discriminator: build the PatchGAN used by the adversarial loss.
    """

    def __init__(self, *, max_side: int = inference.DEFAULT_MAX_SIDE, discriminator: bool = True):
        super().__init__()
        self.backbone = ResNeXt101()
        self.aspp = ASPP(2048, FEATURES)
        self.distillation = ChannelAttention(FEATURES, CHANNEL_REDUCTION)
        self.high_conv = conv_bn_relu(FEATURES, FEATURES)
        self.spatial_attention = SpatialAttention(FEATURES, SPATIAL_KERNEL)
        self.low_conv = conv_bn_relu(256, FEATURES)
        self.fusion = nn.Sequential(conv_bn_relu(2 * FEATURES, FEATURES), conv_bn_relu(FEATURES, 64),
                                    nn.Conv2d(64, 1, 3, padding=1))
        self.discriminator = PatchDiscriminator() if discriminator else None
        self.max_side = inference.check_max_side(max_side)
        # Not in the state dict: constants of the input contract, not weights.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # --- the network -------------------------------------------------------------

    def _run(self, image: torch.Tensor) -> HAttOutput:
        x = (image.to(self.mean.dtype) - self.mean) / self.std
        block1, block4 = self.backbone.features(x)
        distilled, channel_weights = self.distillation(self.aspp(block4))
        high = self.high_conv(F.interpolate(distilled, size=block1.shape[-2:], mode="bilinear", align_corners=False))
        attention = self.spatial_attention(high)
        cues = self.low_conv(block1) * attention
        logits = F.interpolate(self.fusion(torch.cat((cues, high), 1)), size=image.shape[-2:], mode="bilinear",
                               align_corners=False)
        return HAttOutput(logits, torch.sigmoid(logits), attention, channel_weights)

    @staticmethod
    def _check_pass_input(image, what: str) -> None:
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise InputError(f"{what} takes a float [B,3,H,W] image tensor in [0,1], got {getattr(image, 'shape', image)!r}")
        if 0 in image.shape or image.shape[-2] % inference.MULTIPLE or image.shape[-1] % inference.MULTIPLE:
            raise InputError(f"{what} needs H and W as positive multiples of {inference.MULTIPLE}, got "
                             f"{tuple(image.shape[-2:])}; infer() takes any size")

    def forward_intermediates(self, image: torch.Tensor) -> HAttOutput:
        """Logits, alpha and both attentions of ``image`` ``[B,3,H,W]`` in [0,1] (H, W multiples of 16)."""
        self._check_pass_input(image, "HAttMatting.forward")
        return self._run(image)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The alpha ``[B,1,H,W]`` in [0,1] of ``image`` ``[B,3,H,W]`` in [0,1] (H, W multiples of 16)."""
        return self.forward_intermediates(image).alpha

    @torch.no_grad()
    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None, *, max_side: int | None = None) -> torch.Tensor:
        """The alpha ``[B,1,H,W]`` of ``image`` ``[B,3,H,W]`` in [0,1] of any size (see :mod:`.inference`)."""
        if trimap is not None:
            raise InputError("HAttMatting is trimap-free and takes no trimap; call it without one")
        checks.check_image(image, "HAttMatting")
        cap = self.max_side if max_side is None else inference.check_max_side(max_side)
        return inference.infer(lambda x: self._run(x).alpha, image, cap)

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load an ImageNet ResNeXt-101 32×8d file (torchvision's ``resnext101_32x8d-*.pth``) strictly."""
        load_into(self.backbone, load_state_dict(path), source=f"ImageNet backbone {str(path)!r}")


def build_hatt(max_side: int = inference.DEFAULT_MAX_SIDE, discriminator: bool = True,
               backbone_weights: str | os.PathLike | None = None) -> HAttMatting:
    """Build HAttMatting.

    :param max_side: longest side of the pass of ``infer`` (1600).
    :param discriminator: include the PatchGAN discriminator that the
        adversarial loss trains (``False``: the generator alone, for
        inference-only weights; the recipe then needs ``adversarial=False``).
    :param backbone_weights: path of an ImageNet ResNeXt-101 32×8d state dict
        (torchvision / timm key names), loaded into the backbone.
    """
    inference.check_max_side(max_side)  # refuse a bad option before building 90M parameters
    if not isinstance(discriminator, bool):
        raise InvalidOptionError(f"HAttMatting discriminator must be True or False, got {discriminator!r}")
    model = HAttMatting(max_side=max_side, discriminator=discriminator)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
