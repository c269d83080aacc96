"""GFM-TT with the ResNet-34 encoder (Li et al., IJCV 2022), and the factory the registry calls.

Architecture, attribute names and fusion follow the official ``core/gfm.py``
(JizhiziLi/GFM, ``backbone="r34"``, ``rosta="TT"``), so the released
``gfm_r34_tt.pth`` loads with ``strict=True`` and gives the same outputs:

* encoder: torchvision's ResNet-34, kept whole as ``resnet`` and aliased as
  ``encoder0`` (stem, 1/2), ``encoder1`` (max-pool + layer1, 1/4) and
  ``encoder2..4`` (1/8 .. 1/32); the aliases are the same modules, so the
  ``state_dict`` names those weights twice, as the official one does;
* glance decoder: pyramid pooling on the 1/32 features, five decoder blocks
  up to full size, each fed the pooled context through a ``psp*`` branch;
  three output channels (background / transition / foreground);
* focus decoder: a dilated bridge block, then five decoder blocks with
  U-Net skips from the encoder; one output channel;
* both heads end in a sigmoid; the fused alpha is the collaborative matting
  of :func:`.inference.collaborative_matting`.

The official network takes images in 0..255 without normalisation (both
``core/data.py`` and ``core/test.py`` feed raw pixel values), so ``forward``
scales its [0,1] input by 255 and normalises nothing else.
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

import torch
from torch import nn

from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.fusion import FusedInference
from mattezoo.weights import load_into, load_state_dict

from . import inference
from .blocks import PyramidPooling, ResNet34, bridge_block, decoder_block, psp_branch

PIXEL_SCALE = 255.0  # the official network sees pixel values in 0..255


class GFMOutput(NamedTuple):
    """Everything one forward pass computes (training needs all of it)."""

    glance_logits: torch.Tensor  # [B,3,H,W] background / transition / foreground, before the sigmoid
    focus: torch.Tensor  # [B,1,H,W] focus-decoder alpha (sigmoid)
    fused: torch.Tensor  # [B,1,H,W] collaborative matting: focus in the transition class, 0/1 elsewhere

    @property
    def glance(self) -> torch.Tensor:
        """The official ``glance_sigmoid``: the per-class sigmoid of the logits."""
        return torch.sigmoid(self.glance_logits)

    @property
    def trimap(self) -> torch.Tensor:
        """The glance decoder's trimap, ``[B,1,H,W]`` with 0 / 0.5 / 1."""
        return inference.glance_classes(self.glance_logits).to(torch.float32) * 0.5


class InferenceMaps(NamedTuple):
    """The outputs an inference pass was asked for (None for the others)."""

    glance_logits: torch.Tensor | None = None
    focus: torch.Tensor | None = None


class _Features(NamedTuple):
    e0: torch.Tensor  # 64 @ 1/2
    e1: torch.Tensor  # 64 @ 1/4
    e2: torch.Tensor  # 128 @ 1/8
    e3: torch.Tensor  # 256 @ 1/16
    e4: torch.Tensor  # 512 @ 1/32


class _InferencePass(nn.Module):
    """What a fused pass traces: the requested heads' pre-sigmoid / sigmoid outputs of a 0..255 image."""

    def __init__(self, model: "GFM", outputs: tuple[str, ...]):
        super().__init__()
        self.model, self.outputs = model, outputs
        self.training = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model._heads(x, self.outputs)


class GFM(nn.Module):
    """GFM-TT(ResNet-34). ``forward`` maps ``[B,3,H,W]`` in [0,1] (H, W multiples of 32) to the fused alpha.

    :param strategy: ``"hybrid"`` or ``"resize"`` for :meth:`infer`.
    :param max_side: per-side size cap of a pass in :meth:`infer`.
    :param known_rule: HYBRID's known pixels, ``"official"`` or ``"solid"``.
    """

    def __init__(self, *, strategy: str = "hybrid", max_side: int = inference.DEFAULT_MAX_SIDE,
                 known_rule: str = "official"):
        super().__init__()
        self.resnet = ResNet34()
        r = self.resnet
        self.encoder0 = nn.Sequential(r.conv1, r.bn1, r.relu)
        self.encoder1 = nn.Sequential(r.maxpool, r.layer1)
        self.encoder2 = r.layer2
        self.encoder3 = r.layer3
        self.encoder4 = r.layer4
        self.psp_module = PyramidPooling(512, 512, (1, 3, 5))
        self.psp4 = psp_branch(512, 256, 2)
        self.psp3 = psp_branch(512, 128, 4)
        self.psp2 = psp_branch(512, 64, 8)
        self.psp1 = psp_branch(512, 64, 16)
        widths = ((1024, 512, 512, 256), (512, 256, 256, 128), (256, 128, 128, 64), (128, 64, 64, 64))
        for level, dims in zip((4, 3, 2, 1), widths):
            self.add_module(f"decoder{level}_g", decoder_block(*dims, last_bn_relu=True, upsample=True))
        self.bridge_block = bridge_block(512, 512, 512)
        for level, dims in zip((4, 3, 2, 1), widths):
            self.add_module(f"decoder{level}_f", decoder_block(*dims, last_bn_relu=True, upsample=True))
        self.decoder0_g = decoder_block(128, 64, 64, 3, last_bn_relu=False, upsample=True)
        self.decoder0_f = decoder_block(128, 64, 64, 1, last_bn_relu=False, upsample=True)
        self.strategy = inference.check_strategy(strategy)
        self.max_side = inference.check_max_side(max_side)
        self.known_rule = inference.check_known_rule(known_rule)
        # Inference passes run a fused copy (mattezoo.fusion) unless this is False.
        self.fused_inference = True
        self._fused_passes: dict[tuple[str, ...], FusedInference] = {}
        self._fusion_failed: str | None = None

    # --- the network -------------------------------------------------------------

    def _encode(self, x: torch.Tensor) -> _Features:
        e0 = self.encoder0(x)
        e1 = self.encoder1(e0)
        e2 = self.encoder2(e1)
        e3 = self.encoder3(e2)
        return _Features(e0, e1, e2, e3, self.encoder4(e3))

    def _glance(self, f: _Features) -> torch.Tensor:
        psp = self.psp_module(f.e4)
        d = self.decoder4_g(torch.cat((psp, f.e4), 1))
        d = self.decoder3_g(torch.cat((self.psp4(psp), d), 1))
        d = self.decoder2_g(torch.cat((self.psp3(psp), d), 1))
        d = self.decoder1_g(torch.cat((self.psp2(psp), d), 1))
        return self.decoder0_g(torch.cat((self.psp1(psp), d), 1))

    def _focus(self, f: _Features) -> torch.Tensor:
        d = self.decoder4_f(torch.cat((self.bridge_block(f.e4), f.e4), 1))
        d = self.decoder3_f(torch.cat((d, f.e3), 1))
        d = self.decoder2_f(torch.cat((d, f.e2), 1))
        d = self.decoder1_f(torch.cat((d, f.e1), 1))
        return torch.sigmoid(self.decoder0_f(torch.cat((d, f.e0), 1)))

    def _heads(self, x: torch.Tensor, names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
        features = self._encode(x)
        heads = {"glance_logits": self._glance, "focus": self._focus}
        return tuple(heads[name](features) for name in names)

    # --- public passes -----------------------------------------------------------

    @property
    def input_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @staticmethod
    def _check_pass_input(image, what: str) -> None:
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise InputError(f"{what} takes a float [B,3,H,W] image tensor in [0,1], got {getattr(image, 'shape', image)!r}")
        if 0 in image.shape or image.shape[-2] % inference.MULTIPLE or image.shape[-1] % inference.MULTIPLE:
            raise InputError(f"{what} needs H and W as positive multiples of {inference.MULTIPLE}, got "
                             f"{tuple(image.shape[-2:])}; infer() and infer_details() take any size")

    def forward_intermediates(self, image: torch.Tensor) -> GFMOutput:
        """Glance logits, focus alpha and fused alpha of ``image`` ``[B,3,H,W]`` in [0,1] (H, W multiples of 32)."""
        self._check_pass_input(image, "GFM.forward")
        glance_logits, focus = self._heads(image * PIXEL_SCALE, ("glance_logits", "focus"))
        return GFMOutput(glance_logits, focus, inference.collaborative_matting(glance_logits, focus))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The fused alpha ``[B,1,H,W]`` in [0,1] of ``image`` ``[B,3,H,W]`` in [0,1] (H, W multiples of 32)."""
        return self.forward_intermediates(image).fused

    def inference_maps(self, image: torch.Tensor, *, glance: bool = True, focus: bool = True) -> InferenceMaps:
        """The requested head outputs of one pass over ``image`` (H, W multiples of 32).

        In eval mode outside autograd, with ``fused_inference`` on (the
        default), the pass runs a ``torch.fx`` copy of the network with every
        conv fused with its BatchNorm and ReLU (:mod:`mattezoo.fusion`) and
        without the head that was not asked for (HYBRID's 1/3-scale pass runs
        no focus decoder, its 1/2-scale pass no glance decoder). The copy is
        rebuilt when the weights change; its outputs equal the plain pass's to
        float rounding.
        """
        names = tuple(n for n, wanted in (("glance_logits", glance), ("focus", focus)) if wanted)
        if not names:
            raise InvalidOptionError("inference_maps needs at least one of glance=True, focus=True")
        self._check_pass_input(image, "inference_maps")
        x = image * PIXEL_SCALE
        if self.fused_inference and self._fusion_failed is None and not self.training and not torch.is_grad_enabled():
            try:
                return InferenceMaps(**dict(zip(names, self._fused_pass(names)(x))))
            except torch.fx.proxy.TraceError as exc:  # a subclass whose forward fx cannot trace
                self._fusion_failed = str(exc)
                warnings.warn(f"{type(self).__name__}: fused inference is unavailable ({exc}); running unfused",
                              RuntimeWarning, stacklevel=2)
        return InferenceMaps(**dict(zip(names, self._heads(x, names))))

    def _fused_pass(self, names: tuple[str, ...]) -> FusedInference:
        if names not in self._fused_passes:
            self._fused_passes[names] = FusedInference(lambda: _InferencePass(self, names), self)
        return self._fused_passes[names]

    @torch.no_grad()
    def infer_details(self, image: torch.Tensor, *, strategy: str | None = None, max_side: int | None = None,
                      known_rule: str | None = None) -> inference.InferenceResult:
        """Alpha, glance trimap (0/0.5/1) and focus matte of ``image`` of any size, by a test strategy."""
        return inference.infer(self, image, strategy or self.strategy, self.max_side if max_side is None else max_side,
                               known_rule or self.known_rule)

    def infer_trimap(self, image: torch.Tensor) -> torch.Tensor:
        """The glance decoder's trimap ``[B,1,H,W]`` (0 / 0.5 / 1) of ``image``, by the configured strategy."""
        return self.infer_details(image).trimap

    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
        """The alpha ``[B,1,H,W]`` of ``image`` ``[B,3,H,W]`` in [0,1], any size, by the configured strategy."""
        if trimap is not None:
            raise InputError("GFM is trimap-free and takes no trimap; call it without one")
        return self.infer_details(image).alpha

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load torchvision's ImageNet ResNet-34 file (``resnet34-*.pth``) into the encoder, strictly."""
        load_into(self.resnet, load_state_dict(path), source=f"ImageNet backbone {str(path)!r}")


def build_gfm(strategy: str = "hybrid", max_side: int = inference.DEFAULT_MAX_SIDE, known_rule: str = "official",
              backbone_weights: str | os.PathLike | None = None) -> GFM:
    """Build GFM-TT(ResNet-34).

    :param strategy: test strategy of ``infer``: ``"hybrid"`` (official
        default: glance at 1/3 scale, focus at 1/2) or ``"resize"`` (one pass
        at 1/2 scale).
    :param max_side: per-side size cap of one pass (1600 officially).
    :param known_rule: HYBRID's known pixels: ``"official"`` (the official
        float64 equality test, bit for bit) or ``"solid"``.
    :param backbone_weights: path of torchvision's ImageNet ResNet-34 state
        dict, loaded into the encoder (the official training starts from it).
    """
    # Refuse bad options before building 55M parameters.
    inference.check_strategy(strategy)
    inference.check_max_side(max_side)
    inference.check_known_rule(known_rule)
    model = GFM(strategy=strategy, max_side=max_side, known_rule=known_rule)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
