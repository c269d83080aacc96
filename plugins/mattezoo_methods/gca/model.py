"""GCA Matting (Li & Lu, AAAI 2020) as the official ``Generator(resnet_gca_encoder_29, res_gca_decoder_22)``.

Module names follow the official ``networks/`` (``encoder.*``, ``decoder.*``,
spectral norm as ``*.module.weight_bar`` / ``weight_u`` / ``weight_v``), so the
released ``gca-dist-all-data.pth`` (``{"state_dict": {"module.<key>": ...}}``)
loads with ``strict=True`` through :mod:`mattezoo.weights`, and the same
weights give the official outputs to float rounding.

The network's input is the official test data path's: the RGB image
normalised with the ImageNet mean and std, concatenated with the trimap one-hot
encoded as (background, unknown, foreground). :meth:`GCA.forward` does that
encoding itself from mattezoo's ``[B,3,H,W]`` image in [0,1] and ``[B,1,H,W]``
trimap with 0 / 0.5 / 1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from mattezoo import checks
from mattezoo.errors import InputError

from . import inference
from .decoder import GCADecoder
from .encoder import GCAEncoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GCAOutput(NamedTuple):
    network: torch.Tensor  # [B,1,H,W] the network's alpha, (tanh + 1) / 2, before the known-region rule
    alpha: torch.Tensor  # [B,1,H,W] the same with the trimap's foreground 1 and background 0


def encode_inputs(image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """``[B,6,H,W]``: the ImageNet-normalised image and the one-hot trimap (bg, unknown, fg)."""
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    classes = (trimap * 2).round().long().squeeze(1)  # 0 / 1 / 2
    one_hot = nn.functional.one_hot(classes, 3).permute(0, 3, 1, 2).to(image.dtype)
    return torch.cat(((image - mean) / std, one_hot), dim=1)


class GCA(nn.Module):
    """GCA Matting. ``forward(image, trimap)`` needs H, W multiples of 32; :meth:`infer` takes any size.

    :param padding: test-time padding of :meth:`infer`, ``"test"`` or ``"demo"``.
    :param max_side: the largest image side :meth:`infer` accepts.
    """

    def __init__(self, *, padding: str = "test", max_side: int = inference.DEFAULT_MAX_SIDE):
        super().__init__()
        self.encoder = GCAEncoder()
        self.decoder = GCADecoder()
        self.padding = inference.check_padding(padding)
        self.max_side = checks.check_max_side(max_side, "GCA")

    @property
    def input_dtype(self) -> torch.dtype:
        return self.decoder.conv2.weight.dtype

    @staticmethod
    def _check_pass_input(image, trimap, what: str) -> None:
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise InputError(f"{what} takes a float [B,3,H,W] image tensor in [0,1], got {tuple(getattr(image, 'shape', ())) or type(image).__name__}")
        if 0 in image.shape or image.shape[-2] % inference.MULTIPLE or image.shape[-1] % inference.MULTIPLE:
            raise InputError(f"{what} needs H and W as positive multiples of {inference.MULTIPLE}, got "
                             f"{tuple(image.shape[-2:])}; infer() takes any size")
        checks.check_trimap(trimap, image, what)

    def forward_intermediates(self, image: torch.Tensor, trimap: torch.Tensor) -> GCAOutput:
        """The network's alpha and the known-region-filled alpha (H, W multiples of 32)."""
        self._check_pass_input(image, trimap, "GCA.forward")
        network = self.decoder(self.encoder(encode_inputs(image, trimap)))
        return GCAOutput(network, inference.fill_known(network, trimap))

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """Alpha ``[B,1,H,W]`` with the trimap's known regions applied (H, W multiples of 32)."""
        return self.forward_intermediates(image, trimap).alpha

    @torch.no_grad()
    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None, *, padding: str | None = None,
              max_side: int | None = None) -> torch.Tensor:
        """Alpha ``[B,1,H,W]`` of an image of any size, by the official test procedure (see :mod:`.inference`)."""
        padding = self.padding if padding is None else inference.check_padding(padding)
        max_side = self.max_side if max_side is None else checks.check_max_side(max_side, "GCA")
        return inference.infer(self, image, trimap, padding, max_side)


def build_gca(padding: str = "test", max_side: int = inference.DEFAULT_MAX_SIDE) -> GCA:
    """Build GCA Matting (ResNet-34-D GCA encoder, GCA decoder, spectral norm; 25.2M weights).

    :param padding: test-time padding of ``infer``: ``"test"`` (official
        ``tester.py``: reflect-pad bottom/right to multiples of 32) or
        ``"demo"`` (official ``demo.py``: also a 32-pixel reflect border).
    :param max_side: the largest image side ``infer`` accepts (memory guard:
        the attention grows with the square of the pixel count).
    """
    inference.check_padding(padding)
    checks.check_max_side(max_side, "GCA")
    return GCA(padding=padding, max_side=max_side)
