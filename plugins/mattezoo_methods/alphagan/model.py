"""AlphaGAN (Lutz, Amplianitis, Smolic, BMVC 2018): the generator, its discriminator, and the factory.

The generator maps image + trimap (4 channels) to alpha: a ResNet-50 encoder
with its last two stages dilated (output stride 8, :mod:`.encoder`), ASPP,
and a decoder that upsamples bilinearly, takes skips from the encoder and
unpools with the first pooling's indices (:mod:`.decoder`).

The discriminator (:mod:`.discriminator`) is a submodule, ``discriminator``,
so that the training engine's one optimiser and its checkpoints cover it
(exact resume; see :mod:`.recipe`), but no inference path runs it.
:meth:`AlphaGAN.generator_state_dict` is the state without it, and
``build_alphagan(discriminator=False)`` builds the generator alone (to load
such a file strictly, or to run inference without 2.8 M idle parameters).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn

from mattezoo import checks
from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.weights import load_state_dict

from . import inference
from .decoder import ASPP, Decoder, init_decoder_weights
from .discriminator import DEFAULT_LAYERS, PatchDiscriminator
from .encoder import DilatedResNet50

DISCRIMINATOR_PREFIX = "discriminator."


class AlphaGANOutput(NamedTuple):
    raw: torch.Tensor  # [B,1,H,W] the generator's sigmoid output everywhere
    alpha: torch.Tensor  # [B,1,H,W] raw on the unknown pixels, the trimap's 0 / 1 on the known ones


class AlphaGAN(nn.Module):
    """AlphaGAN's generator (and, unless built without, its PatchGAN discriminator).

    ``forward(image, trimap)`` maps ``[B,3,H,W]`` in [0,1] and ``[B,1,H,W]``
    with 0 / 0.5 / 1 (H, W multiples of 8) to the matte; :meth:`infer` takes
    any size.
    """

    def __init__(self, *, strategy: str = "pad", max_side: int = inference.DEFAULT_MAX_SIDE,
                 discriminator: bool = True, discriminator_layers: int = DEFAULT_LAYERS):
        super().__init__()
        self.encoder = DilatedResNet50()
        self.aspp = ASPP()
        self.decoder = Decoder()
        init_decoder_weights(self.aspp)
        init_decoder_weights(self.decoder)
        self.discriminator = PatchDiscriminator(n_layers=discriminator_layers) if discriminator else None
        self.strategy = inference.check_strategy(strategy)
        self.max_side = checks.check_max_side(max_side, "AlphaGAN")

    # --- generator ---------------------------------------------------------------

    def _generate(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        x = inference.encode(image, trimap)
        features = self.encoder(x)
        return self.decoder(self.aspp(features.out), features, x[:, :3])

    def _check_pass_input(self, image, trimap, what: str) -> None:
        checks.check_image(image, what)
        checks.check_trimap(trimap, image, what)
        m = inference.NETWORK_MULTIPLE
        if image.shape[-2] % m or image.shape[-1] % m:
            raise InputError(f"{what} needs H and W as multiples of {m} (the encoder's output stride), got "
                             f"{tuple(image.shape[-2:])}; infer() takes any size")

    def forward_intermediates(self, image: torch.Tensor, trimap: torch.Tensor) -> AlphaGANOutput:
        """The generator's raw alpha and the matte with the trimap's known pixels pasted in."""
        self._check_pass_input(image, trimap, "AlphaGAN.forward")
        raw = self._generate(image, trimap)
        return AlphaGANOutput(raw, inference.paste_known(raw, trimap))

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(image, trimap).alpha

    @torch.no_grad()
    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None, *, strategy: str | None = None,
              max_side: int | None = None) -> torch.Tensor:
        """The matte ``[B,1,H,W]`` of an image of any size, by the configured test strategy (:mod:`.inference`)."""
        dtype = next(self.parameters()).dtype
        image = image.to(dtype) if isinstance(image, torch.Tensor) and image.is_floating_point() else image
        trimap = trimap.to(dtype) if isinstance(trimap, torch.Tensor) and trimap.is_floating_point() else trimap
        return inference.infer(self._generate, image, trimap, self.strategy if strategy is None else strategy,
                               self.max_side if max_side is None else max_side)

    # --- discriminator -----------------------------------------------------------

    def discriminate(self, composite: torch.Tensor, trimap: torch.Tensor, *, frozen: bool = False) -> torch.Tensor:
        """PatchGAN logits ``[B,1,h,w]`` of a ``[B,3,H,W]`` composite in [0,1] and its trimap.

        ``frozen=True`` runs the discriminator with detached parameters: the
        result carries gradients to the composite (the generator) only.
        """
        if self.discriminator is None:
            raise InvalidOptionError("this AlphaGAN was built with discriminator=False and cannot train adversarially; "
                                     "build it with discriminator=True (the default)")
        x = inference.encode(composite, trimap)
        if not frozen:
            return self.discriminator(x)
        detached = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return torch.func.functional_call(self.discriminator, detached, (x,))

    # --- weights -----------------------------------------------------------------

    def generator_state_dict(self) -> dict[str, torch.Tensor]:
        """The state without the discriminator: what ``build_alphagan(discriminator=False)`` loads."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(DISCRIMINATOR_PREFIX)}

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load torchvision's ImageNet ResNet-50 file (``resnet50-*.pth``) into the encoder (trimap channel zero)."""
        self.encoder.load_imagenet(load_state_dict(path), source=f"ImageNet backbone {str(path)!r}")


def build_alphagan(strategy: str = "pad", max_side: int = inference.DEFAULT_MAX_SIDE, discriminator: bool = True,
                   discriminator_layers: int = DEFAULT_LAYERS,
                   backbone_weights: str | os.PathLike | None = None) -> AlphaGAN:
    """Build AlphaGAN.

    :param strategy: test strategy of ``infer``: ``"pad"`` (full resolution,
        reflect-padded to a multiple of 32) or ``"resize"`` (the CDOTAD
        re-implementation's tester: bilinear to a multiple of 32 and back).
    :param max_side: ``"pad"`` refuses longer sides; ``"resize"`` caps its pass at it (6400 in the re-implementation).
    :param discriminator: build the PatchGAN discriminator (needed for training;
        ``False`` for the generator alone, e.g. to load ``generator_state_dict()`` files).
    :param discriminator_layers: the PatchGAN's ``n_layers`` (3: pix2pix's 70×70 patches).
    :param backbone_weights: torchvision's ImageNet ResNet-50 state dict, loaded into the encoder.
    """
    inference.check_strategy(strategy)
    checks.check_max_side(max_side, "AlphaGAN")
    if not isinstance(discriminator, bool):
        raise InvalidOptionError(f"discriminator must be True or False, got {discriminator!r}")
    if isinstance(discriminator_layers, bool) or not isinstance(discriminator_layers, int) or not 1 <= discriminator_layers <= 5:
        raise InvalidOptionError(f"discriminator_layers must be an int from 1 to 5 (pix2pix uses 3), got {discriminator_layers!r}")
    model = AlphaGAN(strategy=strategy, max_side=max_side, discriminator=discriminator,
                     discriminator_layers=discriminator_layers)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
