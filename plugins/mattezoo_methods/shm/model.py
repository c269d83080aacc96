"""Semantic Human Matting (Chen et al., ACM MM 2018): T-Net, M-Net and the fusion module, and the factory.

The authors released no code; this follows the paper (see docs/shm.md for
which details are ours):

* T-Net (PSPNet-50, :class:`.blocks.TNet`) predicts the trimap as three
  classes; their softmax gives background, unknown and foreground
  probabilities ``B_s, U_s, F_s``;
* M-Net (:class:`.blocks.MNet`) takes the image and the three probabilities
  (6 channels) and predicts the raw alpha ``alpha_r`` (a sigmoid here, so it
  lies in [0,1]);
* the fusion module: ``alpha_p = F_s + U_s * alpha_r`` (paper eq. 2).

Both networks see the image normalised with the ImageNet mean and standard
deviation (the T-Net backbone and M-Net encoder are ImageNet networks).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mattezoo import checks
from mattezoo.errors import CheckpointError, InputError
from mattezoo.weights import load_into, load_state_dict

from . import inference
from .blocks import ENCODER_STAGES, POOLINGS, MNet, TNet

MULTIPLE = 2**POOLINGS  # 16: the M-Net's four poolings (the T-Net needs 8, a divisor)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2  # channels of the trimap probabilities
IMAGENET_CLASSIFIER = ("fc.weight", "fc.bias")  # in torchvision's ResNet-50 file; PSPNet has no use for them


def fuse(trimap_probs: torch.Tensor, raw_alpha: torch.Tensor) -> torch.Tensor:
    """The fusion module: ``F_s + U_s * alpha_r`` from ``[B,3,H,W]`` probabilities (bg, unknown, fg)."""
    return trimap_probs[:, FOREGROUND:FOREGROUND + 1] + trimap_probs[:, UNKNOWN:UNKNOWN + 1] * raw_alpha


def trimap_one_hot(trimap: torch.Tensor) -> torch.Tensor:
    """``[B,1,H,W]`` trimap (0 / 0.5 / 1) as ``[B,3,H,W]`` probabilities: the M-Net's input in its pre-training."""
    classes = torch.round(trimap[:, 0] * 2).clamp(0, 2).long()
    return F.one_hot(classes, 3).permute(0, 3, 1, 2).to(trimap.dtype)


class SHMOutput(NamedTuple):
    """Everything one end-to-end pass computes (training needs all of it)."""

    trimap_logits: torch.Tensor  # [B,3,H,W] T-Net logits: background / unknown / foreground
    raw_alpha: torch.Tensor  # [B,1,H,W] M-Net alpha_r in [0,1]
    fused: torch.Tensor  # [B,1,H,W] alpha_p = F_s + U_s * alpha_r

    @property
    def trimap_probs(self) -> torch.Tensor:
        return torch.softmax(self.trimap_logits, dim=1)

    @property
    def trimap(self) -> torch.Tensor:
        """The T-Net's trimap, ``[B,1,H,W]`` with 0 / 0.5 / 1 (argmax of the classes)."""
        return self.trimap_logits.argmax(dim=1, keepdim=True).to(self.fused.dtype) * 0.5


class SHM(nn.Module):
    """SHM. ``forward`` maps ``[B,3,H,W]`` in [0,1] (H, W multiples of 16) to the fused alpha.

    :param max_side: :meth:`infer` shrinks images whose longer side exceeds it.
    """

    def __init__(self, *, max_side: int = inference.DEFAULT_MAX_SIDE):
        super().__init__()
        self.t_net = TNet()
        self.m_net = MNet()
        self.max_side = checks.check_max_side(max_side, "SHM")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # --- checks ---------------------------------------------------------------------

    def _check_pass_input(self, image, what: str) -> None:
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise InputError(f"{what} takes a float [B,3,H,W] image tensor in [0,1], got {getattr(image, 'shape', image)!r}")
        if 0 in image.shape or image.shape[-2] % MULTIPLE or image.shape[-1] % MULTIPLE:
            raise InputError(f"{what} needs H and W as positive multiples of {MULTIPLE}, got {tuple(image.shape[-2:])}; "
                             f"infer() takes any size")
        if self.training and image.shape[0] < 2:
            # The 1-bin pyramid pooling branch has one value per channel and image: BatchNorm needs two.
            raise InputError(f"{what} in training mode needs at least 2 images per batch (the pyramid pooling's "
                             f"BatchNorm), got 1; call .eval() to run single images")

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)

    # --- the parts --------------------------------------------------------------------

    def segment(self, image: torch.Tensor) -> torch.Tensor:
        """T-Net alone: trimap logits ``[B,3,H,W]`` (bg / unknown / fg) of ``image`` in [0,1]."""
        self._check_pass_input(image, "SHM.segment")
        return self.t_net(self._normalise(image))

    def matte(self, image: torch.Tensor, trimap_probs: torch.Tensor) -> torch.Tensor:
        """M-Net alone: the raw alpha ``alpha_r`` ``[B,1,H,W]`` given ``[B,3,H,W]`` trimap probabilities."""
        self._check_pass_input(image, "SHM.matte")
        if (not isinstance(trimap_probs, torch.Tensor) or trimap_probs.ndim != 4 or trimap_probs.shape[1] != 3
                or trimap_probs.shape[0] != image.shape[0] or trimap_probs.shape[-2:] != image.shape[-2:]):
            raise InputError(f"SHM.matte takes [B,3,H,W] trimap probabilities (bg, unknown, fg) matching the image "
                             f"{tuple(image.shape)}, got {tuple(getattr(trimap_probs, 'shape', ()))}")
        return self._matte(self._normalise(image), trimap_probs)

    def _matte(self, normalised: torch.Tensor, trimap_probs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.m_net(torch.cat((normalised, trimap_probs.to(normalised.dtype)), dim=1)))

    # --- end to end ---------------------------------------------------------------------

    def forward_intermediates(self, image: torch.Tensor) -> SHMOutput:
        """T-Net logits, M-Net raw alpha and fused alpha of ``image`` ``[B,3,H,W]`` in [0,1] (multiples of 16)."""
        self._check_pass_input(image, "SHM.forward")
        x = self._normalise(image)
        logits = self.t_net(x)
        probs = torch.softmax(logits, dim=1)
        raw = self._matte(x, probs)
        return SHMOutput(logits, raw, fuse(probs, raw))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The fused alpha ``[B,1,H,W]`` in [0,1] of ``image`` ``[B,3,H,W]`` in [0,1] (H, W multiples of 16)."""
        return self.forward_intermediates(image).fused

    @torch.no_grad()
    def infer_details(self, image: torch.Tensor, *, max_side: int | None = None) -> SHMOutput:
        """All outputs for ``image`` of any size (shrunk to ``max_side``, padded to 16, restored)."""
        return inference.infer(self, image, self.max_side if max_side is None else max_side)

    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
        """The alpha ``[B,1,H,W]`` of ``image`` ``[B,3,H,W]`` in [0,1] of any size."""
        if trimap is not None:
            raise InputError("SHM is trimap-free and takes no trimap; call it without one")
        return self.infer_details(image).fused

    @torch.no_grad()
    def infer_trimap(self, image: torch.Tensor) -> torch.Tensor:
        """The T-Net's trimap ``[B,1,H,W]`` (0 / 0.5 / 1) of ``image`` of any size, for trimap-based methods."""
        return inference.infer_trimap(self, image, self.max_side)

    # --- ImageNet initialisation --------------------------------------------------------

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load torchvision's ImageNet ResNet-50 file (``resnet50-*.pth``) into the T-Net backbone.

        Every key must match (``strict=True``); only the classifier ``fc.*``,
        which PSPNet does not use, is set aside.
        """
        state = load_state_dict(path)
        missing_fc = [k for k in IMAGENET_CLASSIFIER if k not in state]
        if missing_fc:
            raise CheckpointError(f"ImageNet backbone {str(path)!r} is not a torchvision ResNet-50 state dict: "
                                  f"it has no {', '.join(missing_fc)}")
        backbone = {k: v for k, v in state.items() if k not in IMAGENET_CLASSIFIER}
        load_into(self.t_net.backbone, backbone, source=f"ImageNet backbone {str(path)!r}")

    def load_vgg16(self, path: str | os.PathLike) -> None:
        """Load torchvision's ImageNet VGG-16 file (``vgg16-*.pth``) into the M-Net encoder's 13 convs.

        As DIM does for its 4-channel input, the first conv takes VGG's RGB
        filters and zeros for the three trimap channels; BatchNorms and the
        decoder keep their initialisation. The file must hold exactly VGG-16's
        13 ``features`` convs, with or without its 3 ``classifier`` layers
        (which are set aside).
        """
        state = load_state_dict(path)
        names = [name for stage in ENCODER_STAGES for name, _, _ in stage]
        feature_indices = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # convs among VGG-16's features
        expected = {f"features.{i}.{p}" for i in feature_indices for p in ("weight", "bias")}
        classifier = {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
        if not expected <= set(state) or not set(state) <= expected | classifier:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected - classifier)
            raise CheckpointError(f"VGG-16 weights {str(path)!r} do not have torchvision's VGG-16 layout: "
                                  f"missing {missing[:6]}, unexpected {unexpected[:6]}")
        with torch.no_grad():
            for name, index in zip(names, feature_indices):
                conv = getattr(self.m_net, name)[0]
                weight, bias = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
                if name == "conv1_1":
                    weight = torch.cat((weight, torch.zeros_like(weight)), dim=1)
                if weight.shape != conv.weight.shape:
                    raise CheckpointError(f"VGG-16 weights {str(path)!r}: features.{index}.weight has shape "
                                          f"{tuple(state[f'features.{index}.weight'].shape)}, not VGG-16's")
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)


def build_shm(max_side: int = inference.DEFAULT_MAX_SIDE, backbone_weights: str | os.PathLike | None = None,
              vgg_weights: str | os.PathLike | None = None) -> SHM:
    """Build SHM (T-Net PSPNet-50, M-Net, fusion).

    :param max_side: :meth:`SHM.infer` shrinks images whose longer side
        exceeds this (then restores the alpha to the image size).
    :param backbone_weights: torchvision's ImageNet ResNet-50 state dict, for
        the T-Net backbone.
    :param vgg_weights: torchvision's ImageNet VGG-16 state dict, for the
        M-Net encoder.
    """
    checks.check_max_side(max_side, "SHM")  # refuse bad options before building 60M parameters
    model = SHM(max_side=max_side)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    if vgg_weights is not None:
        model.load_vgg16(vgg_weights)
    return model
