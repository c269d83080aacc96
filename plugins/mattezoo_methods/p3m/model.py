"""P3M-Net (Li et al., ACM MM 2021) with the ResNet-34 encoder, and the factory the registry calls.

The architecture, layer names and fusion are those of the official
implementation (JizhiziLi/P3M ``core/network/``), so the released
``p3mnet_pretrained_on_p3m10k.pth`` loads with ``strict=True`` and gives the
same outputs. The official model keeps its ResNet both as ``resnet`` and under
the aliases ``encoder0``..``encoder4`` (the same modules registered twice), so
its ``state_dict`` names the encoder weights twice; the aliases are kept here
for the same key layout.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import NamedTuple

import torch
from torch import nn

from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.fusion import FusedInference
from mattezoo.hybrid import check_known_rule

from . import inference
from .decoder import R34_LAYOUT, DecoderMixin, DecoderOutput, EncoderFeatures
from .encoder import ResNet34MP
from .pooling import MaxPoolWithIndices, check_pooling

# The official test code normalises the [0,1] image with ImageNet statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONES = ("r34", "swin_t")


class P3MOutput(NamedTuple):
    """Everything one forward pass computes (training needs all of it)."""

    global_logits: torch.Tensor  # [B,3,H,W] background / transition / foreground logits
    local: torch.Tensor  # [B,1,H,W] matting-decoder alpha
    fused: torch.Tensor  # [B,1,H,W] local alpha inside the predicted transition, 0/1 outside
    sides: tuple[torch.Tensor, ...]  # dBFI side logits [B,3,H,W] (deep supervision; empty without dBFI)

    @property
    def trimap(self) -> torch.Tensor:
        """The segmentation decoder's trimap, [B,1,H,W] with 0 / 0.5 / 1."""
        return inference.logits_to_trimap(self.global_logits)


class InferenceMaps(NamedTuple):
    """The outputs an inference pass was asked for (None for the others)."""

    global_logits: torch.Tensor | None = None  # [B,3,H,W]
    local: torch.Tensor | None = None  # [B,1,H,W]


class _InferencePass(nn.Module):
    """What a fused inference pass traces: the requested decoder outputs of a normalised image."""

    def __init__(self, model: "P3MMattingModel", outputs: tuple[str, ...]):
        super().__init__()
        self.model, self.outputs = model, outputs
        self.training = False  # the model itself is in eval mode when this is built

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model._decode(self.model._features(x))
        return tuple(getattr(out, name) for name in self.outputs)


def _int32_pool_indices(module: nn.Module) -> None:
    """Swap each index pool of a fused pass for a copy with int32 indices (half their memory traffic)."""
    for name, child in list(module.named_modules()):
        if isinstance(child, MaxPoolWithIndices) and child.backend == "mattezoo":
            faster = copy.copy(child)
            faster.index_dtype = torch.int32
            module.set_submodule(name, faster)


class P3MMattingModel(nn.Module):
    """What every P3M-Net variant shares: input normalisation, outputs and test-time strategies.

    Subclasses provide ``_features(x) -> EncoderFeatures`` and
    ``_decode(features) -> DecoderOutput``.
    """

    def _init_matting(self, strategy: str, max_side: int) -> None:
        """Store the test-time options (called at the end of a subclass's ``__init__``)."""
        self.strategy = inference.check_strategy(strategy)
        self.max_side = inference.check_max_side(max_side)
        self.known_rule = "official"  # HYBRID's known pixels, see mattezoo.hybrid
        self.pool_backend = "mattezoo"
        # Inference passes run a fused copy (mattezoo.fusion) unless this is False.
        self.fused_inference = True
        self._fused_passes: dict[tuple[str, ...], FusedInference] = {}
        self._fusion_failed: str | None = None

    def set_pooling(self, backend: str) -> "P3MMattingModel":
        """Switch every index pool and unpool to ``backend`` (see :data:`.pooling.POOLING_BACKENDS`).

        ``"mattezoo"`` (compiled ops) is the default; ``"torch"`` is the official
        implementation's aten ops; ``"reference"`` exports to standard ONNX.
        The weights and the outputs do not change.
        """
        self.pool_backend = check_pooling(backend)
        self._fused_passes.clear()  # they captured the old backend
        for module in self.modules():
            if isinstance(module, MaxPoolWithIndices):
                module.backend = backend
            if isinstance(module, DecoderMixin):
                module.pool_backend = backend
        return self

    @property
    def input_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @staticmethod
    def normalise(image: torch.Tensor) -> torch.Tensor:
        """ImageNet mean/std normalisation of a [0,1] image, as the official test code does it.

        Constants rather than buffers: the official checkpoints have no such keys,
        and a model built on the meta device and then loaded has nothing left
        uninitialised.
        """
        mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).reshape(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).reshape(1, 3, 1, 1)
        return (image - mean) / std

    def forward_intermediates(self, image: torch.Tensor) -> P3MOutput:
        """Global logits, local alpha, fused alpha and side logits for ``image`` [B,3,H,W] in [0,1].

        H and W must be multiples of 32 (use :meth:`infer` for other sizes).
        """
        x = self.normalise(image)
        out: DecoderOutput = self._decode(self._features(x))
        return P3MOutput(out.global_logits, out.local, inference.fuse(out.global_logits, out.local), out.sides)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The fused alpha [B,1,H,W] of ``image`` [B,3,H,W] in [0,1] (H, W multiples of 32)."""
        return self.forward_intermediates(image).fused

    def inference_maps(self, image: torch.Tensor, *, global_logits: bool = True, local: bool = True) -> InferenceMaps:
        """The requested outputs of a pass over ``image`` [B,3,H,W] in [0,1] (H, W multiples of 32).

        In eval mode outside autograd, with ``fused_inference`` on (the default),
        the pass runs a copy of the network traced with ``torch.fx`` in which
        each conv is fused with its BatchNorm, residual add and ReLU
        (:mod:`mattezoo.fusion`), everything the requested outputs do not need
        is pruned (HYBRID's ½-scale pass never runs the matting decoder, its
        full-scale pass skips the last segmentation stages, neither computes
        the dBFI side outputs), and the pooling indices are int32. The copy is
        rebuilt when the weights change. Its outputs equal the plain forward's
        to float rounding. Otherwise this is the plain forward pass.
        """
        names = tuple(name for name, wanted in (("global_logits", global_logits), ("local", local)) if wanted)
        if not names:
            raise InvalidOptionError("inference_maps needs at least one of global_logits=True, local=True")
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise InputError(f"inference_maps takes a float [B,3,H,W] image tensor, got {getattr(image, 'shape', image)!r}")
        if image.shape[-2] % inference.MULTIPLE or image.shape[-1] % inference.MULTIPLE or 0 in image.shape:
            raise InputError(f"inference_maps needs H and W as positive multiples of {inference.MULTIPLE}, got "
                             f"{tuple(image.shape[-2:])}; infer() and infer_details() take any size")
        x = self.normalise(image)
        if self._fusion_applies():
            try:
                return InferenceMaps(**dict(zip(names, self._fused_pass(names)(x))))
            except torch.fx.proxy.TraceError as exc:  # a subclass whose forward fx cannot trace
                self._fusion_failed = str(exc)
                warnings.warn(f"{type(self).__name__}: fused inference is unavailable ({exc}); running unfused",
                              RuntimeWarning, stacklevel=2)
        out = self._decode(self._features(x))
        return InferenceMaps(**{name: getattr(out, name) for name in names})

    def _fusion_applies(self) -> bool:
        return self.fused_inference and self._fusion_failed is None and not self.training \
            and not torch.is_grad_enabled()

    def _fused_pass(self, names: tuple[str, ...]) -> FusedInference:
        if names not in self._fused_passes:
            self._fused_passes[names] = FusedInference(
                lambda: _InferencePass(self, names), self, leaf_types=self._fusion_leaves, finish=_int32_pool_indices
            )
        return self._fused_passes[names]

    # Modules a symbolic trace must not enter (index pools return a tuple built in C++).
    _fusion_leaves: tuple[type, ...] = (MaxPoolWithIndices,)

    @torch.no_grad()
    def infer_details(self, image: torch.Tensor, *, strategy: str | None = None, max_side: int | None = None,
                      known_rule: str | None = None):
        """Alpha, trimap (0/0.5/1, for chaining trimap-based methods) and local matte, any image size."""
        return inference.infer(
            self, image, strategy or self.strategy, self.max_side if max_side is None else max_side,
            known_rule or self.known_rule,
        )

    def infer_trimap(self, image: torch.Tensor) -> torch.Tensor:
        """The segmentation decoder's trimap ``[B,1,H,W]`` (0 / 0.5 / 1) of ``image``, by the configured strategy."""
        return self.infer_details(image).trimap

    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
        """The alpha [B,1,H,W] of ``image`` [B,3,H,W] in [0,1], any size, by the configured strategy."""
        if trimap is not None:
            raise InputError("P3M-Net is trimap-free and takes no trimap; call it without one")
        return self.infer_details(image).alpha


class P3MNet(DecoderMixin, P3MMattingModel):
    """P3M-Net with the modified ResNet-34 encoder.

    :param tfi, sbfi, dbfi: switch the integration modules (paper Table 5);
        all three off is the BASIC baseline.
    :param strategy: ``"hybrid"`` or ``"resize"`` for :meth:`infer`.
    :param max_side: per-side cap of the image size in a pass.
    """

    def __init__(self, *, tfi: bool = True, sbfi: bool = True, dbfi: bool = True,
                 strategy: str = "hybrid", max_side: int = inference.DEFAULT_MAX_SIDE):
        super().__init__()
        self.resnet = ResNet34MP()
        r = self.resnet
        # Aliases of the official model (same modules, second set of state-dict keys).
        self.encoder0 = nn.Sequential(r.conv1, r.bn1, r.relu)
        self.mp0 = r.maxpool1
        self.encoder1 = nn.Sequential(r.layer1)
        self.mp1 = r.maxpool2
        self.encoder2 = r.layer2
        self.mp2 = r.maxpool3
        self.encoder3 = r.layer3
        self.mp3 = r.maxpool4
        self.encoder4 = r.layer4
        self.mp4 = r.maxpool5
        self._add_decoder(R34_LAYOUT, tfi=tfi, sbfi=sbfi, dbfi=dbfi)
        self._init_matting(strategy, max_side)

    def _features(self, x: torch.Tensor) -> EncoderFeatures:
        return self.resnet.features(x)

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load the official ImageNet ResNet-34-MP file into the encoder (strict, clear errors)."""
        self.resnet.load_imagenet(path)


def _check_switch(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise InvalidOptionError(f"{name} must be True or False, got {value!r}")
    return value


def build_p3m_net(
    tfi: bool = True,
    sbfi: bool = True,
    dbfi: bool = True,
    backbone: str = "r34",
    strategy: str = "hybrid",
    max_side: int = inference.DEFAULT_MAX_SIDE,
    backbone_weights: str | os.PathLike | None = None,
    known_rule: str = "official",
    pooling: str = "mattezoo",
) -> P3MMattingModel:
    """Build P3M-Net.

    :param tfi, sbfi, dbfi: the integration modules (paper Table 5 ablation).
    :param backbone: ``"r34"`` (the paper's model) or ``"swin_t"`` (the IJCV
        extension's P3M-Net(Swin-T), encoder blocks from timm).
    :param strategy: test strategy of ``infer``: ``"hybrid"`` or ``"resize"``.
    :param max_side: per-side cap of the image size in one pass (1600 officially).
    :param backbone_weights: path of an ImageNet backbone checkpoint to load into
        the encoder (``r34mp_pretrained_imagenet.pth.tar`` for ``"r34"``).
    :param known_rule: which pixels of HYBRID's resized trimap are known:
        ``"official"`` (the official code's exact test, bit for bit) or
        ``"solid"`` (every contributing trimap pixel known; no rounding noise).
    :param pooling: ``"mattezoo"`` (compiled ops), ``"torch"`` (aten's, as the
        official code) or ``"reference"`` (plain PyTorch, exports to ONNX).
    """
    switches = {k: _check_switch(k, v) for k, v in (("tfi", tfi), ("sbfi", sbfi), ("dbfi", dbfi))}
    inference.check_strategy(strategy)  # refuse bad options before building 40M parameters
    inference.check_max_side(max_side)
    check_known_rule(known_rule)
    check_pooling(pooling)
    if backbone == "r34":
        model = P3MNet(**switches, strategy=strategy, max_side=max_side)
    elif backbone == "swin_t":
        from .swin import SwinP3MNet

        model = SwinP3MNet(**switches, strategy=strategy, max_side=max_side)
    else:
        raise InvalidOptionError(f"unknown P3M-Net backbone {backbone!r}; valid backbones: {', '.join(BACKBONES)}")
    model.known_rule = known_rule
    model.set_pooling(pooling)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
