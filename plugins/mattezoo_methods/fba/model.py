"""FBA Matting (Forte & Pitié 2020), and the factory the registry calls.

Architecture and attribute names follow the official ``networks/models.py``
(MarcoForte/FBA_Matting: ``MattingModule(fba_encoder(), fba_decoder())``), so
the released ``FBA.pth`` (a bare state dict, ``encoder.*`` / ``decoder.*``)
loads with ``strict=True`` and gives the same outputs:

* encoder: the dilated GN + WS ResNet-50 of :mod:`.layers` on 11 channels
  (normalised image, six distance-transform trimap maps, two-channel trimap);
* decoder: a pyramid pooling module (scales 1, 2, 3, 6) on the 1/8 features,
  ``conv_up1..3`` with bilinear ×2 upsampling and skips from layer1 (1/4) and
  the stem (1/2), then ``conv_up4`` (plain convs, no normalisation) on the
  full-size features with the normalised image, the [0,1] image and the
  two-channel trimap; 7 output channels;
* outputs: alpha clipped to [0,1] (not a sigmoid), F and B through sigmoids,
  then the F/B/alpha fusion of :func:`fba_fusion`.

``forward`` takes mattezoo's image ([0,1] RGB) and trimap (0 / 0.5 / 1) and
builds the network's inputs as the official test code does (:mod:`.encoding`).
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

from . import encoding, inference
from .layers import INPUT_CHANNELS, DilatedResNet50, WSConv2d, group_norm

POOL_SCALES = (1, 2, 3, 6)
FUSION_LAMBDA = 0.1  # the official fusion's prior weight on the network alpha
OUTPUT_CHANNELS = 7  # alpha, F (3), B (3)


class FBAOutput(NamedTuple):
    alpha: torch.Tensor  # [B,1,H,W] in [0,1]
    fg: torch.Tensor  # [B,3,H,W] foreground colours in [0,1]
    bg: torch.Tensor  # [B,3,H,W] background colours in [0,1]


def fba_fusion(alpha: torch.Tensor, image: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
               la: float = FUSION_LAMBDA) -> FBAOutput:
    """The paper's F/B/alpha fusion: one step that makes F, B and alpha agree with the image.

    F and B move towards the values that explain the image for the given alpha
    (clipped to [0,1]); alpha then becomes the projection of ``image - B`` on
    ``F - B``, regularised towards the network's alpha by ``la``.
    """
    a2 = alpha * alpha
    cross = alpha * (1 - alpha)
    new_fg = alpha * image + (1 - a2) * fg - cross * bg
    # As officially, B's update reads the updated F, before either is clipped.
    new_bg = ((1 - alpha) * image + (2 * alpha - a2) * bg - cross * new_fg).clamp(0, 1)
    new_fg = new_fg.clamp(0, 1)
    diff = new_fg - new_bg
    numerator = alpha * la + ((image - new_bg) * diff).sum(1, keepdim=True)
    new_alpha = numerator / ((diff * diff).sum(1, keepdim=True) + la)
    return FBAOutput(new_alpha.clamp(0, 1), new_fg, new_bg)


def _gn_block(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [WSConv2d(cin, cout, kernel, padding=kernel // 2, bias=True), group_norm(cout), nn.LeakyReLU()]


class FBADecoder(nn.Module):
    """The official ``fba_decoder``: PPM, three GN upsampling blocks, a plain-conv head with 7 outputs."""

    def __init__(self):
        super().__init__()
        self.ppm = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(scale), *_gn_block(2048, 256, 1)) for scale in POOL_SCALES)
        self.conv_up1 = nn.Sequential(*_gn_block(2048 + len(POOL_SCALES) * 256, 256, 3), *_gn_block(256, 256, 3))
        self.conv_up2 = nn.Sequential(*_gn_block(256 + 256, 256, 3))
        self.conv_up3 = nn.Sequential(*_gn_block(256 + 64, 64, 3))
        self.conv_up4 = nn.Sequential(
            nn.Conv2d(64 + 3 + 3 + 2, 32, 3, padding=1), nn.LeakyReLU(),
            nn.Conv2d(32, 16, 3, padding=1), nn.LeakyReLU(),
            nn.Conv2d(16, OUTPUT_CHANNELS, 1),
        )
        # Alpha is clipped, not squashed: with torch's default bias (±0.25) a fresh
        # network can put every unknown pixel below 0, where no alpha gradient flows
        # (seeds 4 and 5 of 0..7 did). Starting the alpha channel at 0.5 keeps
        # training from scratch inside the clip; loaded weights replace it.
        with torch.no_grad():
            self.conv_up4[-1].bias[0] = 0.5

    def forward(self, stem, quarter, deep, normalised, image, two_channel) -> torch.Tensor:
        size = deep.shape[-2:]
        pooled = [F.interpolate(branch(deep), size, mode="bilinear", align_corners=False) for branch in self.ppm]
        x = self.conv_up1(torch.cat([deep, *pooled], 1))
        x = self.conv_up2(torch.cat((_up2(x), quarter), 1))
        x = self.conv_up3(torch.cat((_up2(x), stem), 1))
        return self.conv_up4(torch.cat((_up2(x), normalised, image, two_channel), 1))


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def pin_known(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Alpha with the trimap's known pixels set: 0 on background, 1 on foreground (the official demo's rule)."""
    return torch.where(trimap == 0, torch.zeros_like(alpha), torch.where(trimap == 1, torch.ones_like(alpha), alpha))


class FBA(nn.Module):
    """FBA Matting. ``forward(image, trimap)`` gives alpha for H, W multiples of 8; ``infer`` takes any size.

    :param max_side: :meth:`infer` scales images whose longer side exceeds it down to fit (see :mod:`.inference`).
    """

    def __init__(self, *, max_side: int = inference.DEFAULT_MAX_SIDE):
        super().__init__()
        self.encoder = DilatedResNet50()
        self.decoder = FBADecoder()
        self.max_side = inference.check_max_side(max_side)

    # --- the network -------------------------------------------------------------

    def network(self, image: torch.Tensor, two_channel: torch.Tensor, normalised: torch.Tensor,
                distance: torch.Tensor) -> FBAOutput:
        """The official ``MattingModule`` pass on prepared inputs (H, W multiples of 8)."""
        stem, quarter, deep = self.encoder(torch.cat((normalised, distance, two_channel), 1))
        raw = self.decoder(stem, quarter, deep, normalised, image, two_channel)
        alpha = raw[:, :1].clamp(0, 1)
        return fba_fusion(alpha, image, torch.sigmoid(raw[:, 1:4]), torch.sigmoid(raw[:, 4:7]))

    @staticmethod
    def network_inputs(image: torch.Tensor, trimap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(two-channel trimap, normalised image, distance maps)`` of a 0/0.5/1 trimap and a [0,1] image."""
        two_channel = encoding.two_channel_trimap(trimap.to(image.dtype))
        return two_channel, encoding.normalise_image(image), encoding.distance_encoding(two_channel)

    # --- public passes -----------------------------------------------------------

    def forward_intermediates(self, image: torch.Tensor, trimap: torch.Tensor) -> FBAOutput:
        """Alpha, F and B of the network (no known-pixel rule), for ``[B,3,H,W]`` / ``[B,1,H,W]`` with H, W multiples of 8."""
        checks.check_image(image, "FBA.forward")
        checks.check_trimap(trimap, image, "FBA.forward")
        if image.shape[-2] % inference.MULTIPLE or image.shape[-1] % inference.MULTIPLE:
            raise InputError(f"FBA.forward needs H and W as multiples of {inference.MULTIPLE}, got "
                             f"{tuple(image.shape[-2:])}; infer() and infer_fb() take any size")
        dtype = next(self.parameters()).dtype
        image = image.to(dtype)
        return self.network(image, *self.network_inputs(image, trimap))

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """Alpha ``[B,1,H,W]``: the network's, with the trimap's known pixels set to 0 / 1."""
        return pin_known(self.forward_intermediates(image, trimap).alpha, trimap.to(image.dtype))

    @torch.no_grad()
    def infer_fb(self, image: torch.Tensor, trimap: torch.Tensor, *, max_side: int | None = None) -> FBAOutput:
        """Alpha, F and B of ``image`` ``[B,3,H,W]`` in [0,1] with ``trimap`` ``[B,1,H,W]`` (0/0.5/1), any size.

        The official test procedure (:func:`.inference.infer`): F equals the
        image where alpha is 1 and B where alpha is 0.
        """
        return inference.infer(self, image, trimap, self.max_side if max_side is None else max_side)

    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
        """The alpha ``[B,1,H,W]`` of :meth:`infer_fb`."""
        if trimap is None:
            raise InputError("FBA is trimap-based: infer(image, trimap) needs a [B,1,H,W] trimap with 0 / 0.5 / 1")
        return self.infer_fb(image, trimap).alpha

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load an ImageNet GN+WS ResNet-50 state dict (3-channel ``conv1``) into the encoder.

        As the official ``fba_encoder`` does, the stem's 3 RGB input channels
        take the file's ``conv1`` weights and the 8 trimap channels start at
        zero; the classifier (``fc.*``) is ignored.
        """
        state = {k: v for k, v in load_state_dict(path).items() if not k.startswith("fc.")}
        conv1 = state.get("conv1.weight")
        if conv1 is None or conv1.ndim != 4 or conv1.shape[1] != 3:
            got = "none" if conv1 is None else tuple(conv1.shape)
            raise InvalidOptionError(f"backbone file {str(path)!r} needs a 3-channel 'conv1.weight' [64,3,7,7], got {got}")
        widened = conv1.new_zeros(conv1.shape[0], INPUT_CHANNELS, *conv1.shape[2:])
        widened[:, :3] = conv1
        load_into(self.encoder, {**state, "conv1.weight": widened}, source=f"ImageNet backbone {str(path)!r}")


def build_fba(max_side: int = inference.DEFAULT_MAX_SIDE, backbone_weights: str | os.PathLike | None = None) -> FBA:
    """Build FBA Matting.

    :param max_side: longest side :meth:`FBA.infer` runs the network at; larger
        images are scaled down by the official ``scale_input`` rule and the
        outputs scaled back.
    :param backbone_weights: an ImageNet GN+WS ResNet-50 state dict for the
        encoder (where the paper's training starts).
    """
    inference.check_max_side(max_side)
    model = FBA(max_side=max_side)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
