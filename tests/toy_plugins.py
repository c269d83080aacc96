"""Small but real methods for testing the plugin machinery (not shipped)."""

from __future__ import annotations

import torch
from torch import nn

from mattezoo import MethodSpec, hookimpl


class TinyMattingNet(nn.Module):
    """A two-layer conv net: trimap-free, so it exercises the nn.Module paths."""

    def __init__(self, width: int = 4, batchnorm: bool = False):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        norm = [nn.BatchNorm2d(width)] if batchnorm else []
        # No bias before BatchNorm: it would cancel (a zero gradient, up to rounding).
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=not batchnorm), *norm, nn.ReLU(), nn.Conv2d(width, 1, 1))

    def forward(self, image):
        return torch.sigmoid(self.body(image))


class TrimapUnknownToLuma(nn.Module):
    """Trimap-based: known regions from the trimap, unknown pixels get the image luma."""

    def forward(self, image, trimap):
        return torch.where(trimap == 0.5, _luma(image), trimap)


class LumaSegmenter(nn.Module):
    """Trimap-free and makes trimaps: alpha is the luma; the trimap thresholds it (dark bg, bright fg)."""

    def forward(self, image):
        return _luma(image)

    def infer_trimap(self, image):
        luma = _luma(image)
        return torch.where(luma < 0.3, 0.0, torch.where(luma > 0.7, 1.0, 0.5))


def _luma(image):
    return (0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]).clamp(0, 1)


class BlueScreenFill:
    """Classical, not an nn.Module: unknown pixels get 1 - blueness (a toy keyer)."""

    def __call__(self, image, trimap):
        blue = (image[:, 2:3] - 0.5 * (image[:, 0:1] + image[:, 1:2])).clamp(0, 1)
        return torch.where(trimap == 0.5, 1 - blue, trimap)


def build_tiny(width: int = 4, batchnorm: bool = False) -> TinyMattingNet:
    torch.manual_seed(0)
    return TinyMattingNet(width, batchnorm)


def build_luma() -> TrimapUnknownToLuma:
    return TrimapUnknownToLuma()


TINY = MethodSpec(
    name="tiny_net",
    family="trimap-free",
    factory="toy_plugins:build_tiny",
    summary="two-layer conv net used by the tests",
    citation="mattezoo test suite",
    input_multiple=8,
)
KEYER = MethodSpec(
    name="blue_keyer",
    family="classical",
    factory="toy_plugins:BlueScreenFill",
    summary="toy blue-screen keyer",
    citation="mattezoo test suite",
)
LUMA = MethodSpec(
    name="luma_fill",
    family="trimap-based",
    factory="toy_plugins:build_luma",
    summary="fills the unknown region with luma",
    citation="mattezoo test suite",
)

SEGMENTER = MethodSpec(
    name="luma_segmenter",
    family="trimap-free",
    factory="toy_plugins:LumaSegmenter",
    summary="luma as alpha; thresholded luma as trimap",
    citation="mattezoo test suite",
    provides_trimap=True,
)


class ToyPlugin:
    """A plugin as a class instance, datasette-style."""

    def __init__(self, *specs: MethodSpec):
        self.specs = list(specs) or [TINY, LUMA, KEYER]

    @hookimpl
    def mattezoo_register_methods(self):
        return self.specs


class TinyRecipePlugin:
    """Brings a training recipe for ``tiny_net`` through the ``mattezoo_training_recipe`` hook."""

    def __init__(self):
        self.asked: list[str] = []

    @hookimpl
    def mattezoo_training_recipe(self, spec):
        self.asked.append(spec.name)
        if spec.name != "tiny_net":
            return None
        from mattezoo.train import Recipe, Stage, alpha_loss, laplacian_loss

        def loss(model, batch):
            pred = model(batch["image"])
            whole, lap = alpha_loss(pred, batch["alpha"]), laplacian_loss(pred, batch["alpha"])
            return {"loss": whole + lap, "alpha": whole, "laplacian": lap}

        return Recipe(stages=(Stage("main", loss),), lr=5e-2, needs=("image", "alpha"), description="toy")
