"""Deep Image Matting (Xu et al., CVPR 2017) as OpenMMLab's released DIM builds it, and the registry's factory.

The authors never published code; the implementation whose released weights
reproduce the paper is OpenMMLab's (``open-mmlab/mmagic``, formerly mmediting:
``DIM`` with a ``SimpleEncoderDecoder`` of ``VGG16(in_channels=4)`` and
``PlainDecoder``, and a ``PlainRefiner``). Module and parameter names follow
it, so the released ``state_dict`` loads with ``strict=True``:

* ``backbone.encoder``: VGG-16's 13 3×3 convolutions in five blocks
  ``layer1..layer5`` (conv + ReLU pairs, so the convs sit at indices 0, 2, 4),
  each block ending in a 2×2 max-pool that keeps its indices, then ``conv6``
  (the paper's fc6 as a convolution; 1×1, 512 channels) and a ReLU: 14 convs.
  No BatchNorm (the configs leave ``batch_norm=False``).
* ``backbone.decoder``: ``deconv6_1`` (1×1), then five 5×5 convolutions
  ``deconv5_1 .. deconv1_1``, each preceded by un-pooling with the encoder's
  indices, and the alpha-prediction layer ``deconv1`` (5×5, one channel).
  Its output is the *raw* alpha (a logit); the encoder-decoder's matte is its
  sigmoid.
* ``refiner``: four 3×3 convolutions (64 channels, ReLU after the first
  three) on the normalised image and the encoder-decoder's matte; its output
  is added to the raw alpha before the sigmoid:
  ``refined = sigmoid(raw + refine(image, sigmoid(raw)))``.

Input encoding (mmagic's ``MattorPreprocessor`` with the DIM configs): the
RGB image in 0..255 minus the ImageNet mean, divided by the ImageNet std; the
trimap as its uint8 value / 255, i.e. 0, 128/255 and 1 -- so mattezoo's 0.5
for "unknown" becomes 128/255 here.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn

from mattezoo import checks
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo.ops import max_pool2d_with_indices, max_unpool2d
from mattezoo.weights import load_into, load_state_dict

from . import inference

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # on 0..255 RGB, as the DIM configs give them
IMAGENET_STD = (58.395, 57.12, 57.375)
UNKNOWN_LEVEL = 128.0 / 255.0  # the official trimap channel's "unknown" value
VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (width, convs) of layer1..layer5
DECODER_WIDTHS = ((512, 512), (512, 256), (256, 128), (128, 64), (64, 64))  # deconv5_1 .. deconv1_1
REFINER_WIDTH = 64


class DIMOutput(NamedTuple):
    """What one forward pass computes (training needs all of it)."""

    raw: torch.Tensor  # [B,1,H,W] the encoder-decoder's alpha logit
    alpha: torch.Tensor  # [B,1,H,W] sigmoid(raw): the stage-1 matte
    refined: torch.Tensor | None  # [B,1,H,W] sigmoid(raw + refinement), None without the refiner

    @property
    def final(self) -> torch.Tensor:
        """The matte the model predicts: the refined one where there is a refiner."""
        return self.alpha if self.refined is None else self.refined


def _conv_relu_block(in_channels: int, width: int, convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(in_channels if i == 0 else width, width, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class VGG16Encoder(nn.Module):
    """The 4-channel VGG-16 encoder; returns the 1/32 features and the five pooling index maps.

    The pooling (2×2, stride 2) is not a module: it has no parameters, so the
    official key names (``layerN.<conv index>``) stay as they are.
    """

    def __init__(self, in_channels: int = 4):
        super().__init__()
        for n, (width, convs) in enumerate(VGG_BLOCKS, start=1):
            self.add_module(f"layer{n}", _conv_relu_block(in_channels, width, convs))
            in_channels = width
        self.conv6 = nn.Conv2d(512, 512, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        indices = []
        for n in range(1, len(VGG_BLOCKS) + 1):
            x, idx = max_pool2d_with_indices(getattr(self, f"layer{n}")(x), 2, 2, 0)
            indices.append(idx)
        return self.relu(self.conv6(x)), indices


class PlainDecoder(nn.Module):
    """DIM's light decoder: un-pool with the encoder's indices, 5×5 conv + ReLU, five times; then the alpha layer."""

    def __init__(self, in_channels: int = 512):
        super().__init__()
        self.deconv6_1 = nn.Conv2d(in_channels, 512, kernel_size=1)
        for level, (cin, cout) in zip((5, 4, 3, 2, 1), DECODER_WIDTHS):
            self.add_module(f"deconv{level}_1", nn.Conv2d(cin, cout, kernel_size=5, padding=2))
        self.deconv1 = nn.Conv2d(64, 1, kernel_size=5, padding=2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, indices: list[torch.Tensor]) -> torch.Tensor:
        out = self.relu(self.deconv6_1(x))
        for level, idx in zip((5, 4, 3, 2, 1), reversed(indices)):
            # Non-overlapping 2×2 windows: the un-pooled map is exactly twice the size.
            out = max_unpool2d(out, idx, (2 * out.shape[-2], 2 * out.shape[-1]))
            out = self.relu(getattr(self, f"deconv{level}_1")(out))
        return self.deconv1(out)


class EncoderDecoder(nn.Module):
    """mmagic's ``SimpleEncoderDecoder``: encoder then decoder, the raw alpha out."""

    def __init__(self):
        super().__init__()
        self.encoder = VGG16Encoder(4)
        self.decoder = PlainDecoder(512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(*self.encoder(x))


class PlainRefiner(nn.Module):
    """Four 3×3 convolutions on (normalised image, stage-1 matte); the last one's output is a logit residual."""

    def __init__(self, width: int = REFINER_WIDTH):
        super().__init__()
        self.refine_conv1 = nn.Conv2d(4, width, kernel_size=3, padding=1)
        self.refine_conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        self.refine_conv3 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        self.refine_pred = nn.Conv2d(width, 1, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, raw_alpha: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.refine_conv1(x))
        out = self.relu(self.refine_conv2(out))
        out = self.relu(self.refine_conv3(out))
        return torch.sigmoid(raw_alpha + self.refine_pred(out))


def encode_inputs(image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """``[B,4,H,W]`` network input: ImageNet-normalised 0..255 RGB and the trimap as 0 / 128/255 / 1."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    # The official trimap channel is the uint8 file / 255; mattezoo's 0.5 is the file's 128.
    level = torch.where(trimap == 0.5, torch.full_like(trimap, UNKNOWN_LEVEL), trimap).to(image.dtype)
    return torch.cat(((image * 255.0 - mean) / std, level), dim=1)


class DIM(nn.Module):
    """DIM: VGG-16 encoder-decoder on image + trimap, optionally followed by the refinement network.

    ``forward(image, trimap)`` takes ``image`` ``[B,3,H,W]`` in [0,1] and
    ``trimap`` ``[B,1,H,W]`` with 0 / 0.5 / 1 (H, W multiples of 32) and
    returns the network's matte (refined where there is a refiner) without
    any post-processing; :meth:`infer` runs the official test procedure for
    any size.

    :param refine: build and use the refinement network (the stage-2/3
        model); ``False`` is the stage-1 model, whose ``state_dict`` has only
        the ``backbone.*`` keys.
    :param max_side: :meth:`infer` refuses images with a longer side (the
        official test runs the whole image at full resolution in one pass).
    :param quantize: :meth:`infer` rounds the matte to 1/255 steps, as the
        official test does before it saves and scores a prediction.
    """

    def __init__(self, *, refine: bool = True, max_side: int = inference.DEFAULT_MAX_SIDE, quantize: bool = False):
        super().__init__()
        self.backbone = EncoderDecoder()
        self.refiner = PlainRefiner() if refine else None
        self.max_side = checks.check_max_side(max_side, "DIM")
        self.quantize = inference.check_flag("quantize", quantize)
        self.reset_parameters()

    @property
    def refine(self) -> bool:
        return self.refiner is not None

    def reset_parameters(self) -> None:
        """The official initialisation (mmengine's ``xavier_init`` default): Xavier-normal conv weights, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _check_pass_input(image, trimap, what: str) -> None:
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise InputError(f"{what} takes a float [B,3,H,W] image tensor in [0,1], got {getattr(image, 'shape', image)!r}")
        if not isinstance(trimap, torch.Tensor) or trimap.ndim != 4 or trimap.shape[1] != 1:
            raise InputError(f"{what} takes a trimap tensor [B,1,H,W] with 0/0.5/1, got {getattr(trimap, 'shape', trimap)!r}")
        if trimap.shape[0] != image.shape[0] or trimap.shape[-2:] != image.shape[-2:]:
            raise InputError(f"{what}: the trimap {tuple(trimap.shape)} does not match the image {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h == 0 or w == 0 or h % inference.MULTIPLE or w % inference.MULTIPLE:
            raise InputError(f"{what} needs H and W as positive multiples of {inference.MULTIPLE}, got {(h, w)}; "
                             "infer() takes any size")

    def forward_intermediates(self, image: torch.Tensor, trimap: torch.Tensor, *, refine: bool | None = None) -> DIMOutput:
        """Raw alpha, its sigmoid and (with ``refine``, default: when there is a refiner) the refined matte."""
        self._check_pass_input(image, trimap, "DIM.forward")
        if refine is None:
            refine = self.refine
        elif refine and not self.refine:
            raise InvalidOptionError("this DIM was built with refine=False and has no refinement network")
        x = encode_inputs(image.to(self.input_dtype), trimap)
        raw = self.backbone(x)
        alpha = torch.sigmoid(raw)
        refined = self.refiner(torch.cat((x[:, :3], alpha), dim=1), raw) if refine else None
        return DIMOutput(raw, alpha, refined)

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """The network's matte ``[B,1,H,W]`` (no trimap post-processing), H and W multiples of 32."""
        return self.forward_intermediates(image, trimap).final

    @property
    def input_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @torch.no_grad()
    def infer(self, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
        """The official test procedure on ``image`` ``[B,3,H,W]`` in [0,1] and ``trimap`` 0/0.5/1, any size."""
        return inference.infer(self, image, trimap, max_side=self.max_side, quantize=self.quantize)

    def load_backbone(self, path: str | os.PathLike) -> None:
        """Load torchvision's ImageNet VGG-16 (``vgg16-397923af.pth``) into the encoder's 13 3×3 convolutions.

        As the paper initialises DIM: the trimap channel's filter weights start
        at zero; ``conv6`` and the decoder keep their initialisation.
        """
        state = load_state_dict(path)
        own = self.backbone.encoder.state_dict()
        targets = [k for k in own if k.startswith("layer")]
        sources = sorted({k.rsplit(".", 1)[0] for k in state if k.startswith("features.")}, key=lambda k: int(k.split(".")[1]))
        expected = [k.rsplit(".", 1)[0] for k in targets[::2]]
        if len(sources) != len(expected):
            raise CheckpointError(
                f"{str(path)!r} holds {len(sources)} convolutions under 'features.', not VGG-16's {len(expected)}; "
                "pass torchvision's vgg16 ImageNet file (batch-norm-free)")
        new = dict(own)
        for src, dst in zip(sources, expected):
            if f"{src}.weight" not in state or f"{src}.bias" not in state:
                raise CheckpointError(f"{str(path)!r} lacks {src}.weight or {src}.bias of VGG-16's convolution {src}")
            weight, bias = state[f"{src}.weight"], state[f"{src}.bias"]
            target = own[f"{dst}.weight"]
            if dst == expected[0]:  # RGB filters from ImageNet, the trimap channel from zero
                weight = torch.cat((weight, torch.zeros_like(weight[:, :1])), dim=1)
            if weight.shape != target.shape:
                raise CheckpointError(f"{str(path)!r}: {src}.weight has shape {tuple(weight.shape)}, "
                                         f"the encoder's {dst}.weight needs {tuple(target.shape)}")
            new[f"{dst}.weight"], new[f"{dst}.bias"] = weight, bias
        load_into(self.backbone.encoder, new, source=f"ImageNet VGG-16 {str(path)!r}")


def build_dim(refine: bool = True, max_side: int = inference.DEFAULT_MAX_SIDE, quantize: bool = False,
              backbone_weights: str | os.PathLike | None = None) -> DIM:
    """Build DIM.

    :param refine: with the refinement network (the released stage-3 model,
        default) or without it (the stage-1 encoder-decoder).
    :param max_side: the longest image side :meth:`DIM.infer` accepts.
    :param quantize: round :meth:`DIM.infer`'s matte to 1/255 steps (the
        official test's uint8 output).
    :param backbone_weights: torchvision's ImageNet VGG-16 state dict, loaded
        into the encoder as the paper initialises it.
    """
    inference.check_flag("refine", refine)
    checks.check_max_side(max_side, "DIM")
    inference.check_flag("quantize", quantize)
    model = DIM(refine=refine, max_side=max_side, quantize=quantize)
    if backbone_weights is not None:
        model.load_backbone(backbone_weights)
    return model
