"""Toy methods for the bench tests: trainable trimap-free and trimap-based nets, and a classical method that always fails."""

from __future__ import annotations

import torch
from torch import nn

from mattezoo import MethodSpec, hookimpl

from toy_plugins import TINY


class TrimapGuidedNet(nn.Module):
    """Trimap-based and learned: a conv net fills the trimap's unknown band, known pixels are copied."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))

    def forward(self, image, trimap):
        guess = torch.sigmoid(self.body(torch.cat([image, trimap], dim=1)))
        return torch.where(trimap == 0.5, guess, trimap)


def build_guided() -> TrimapGuidedNet:
    torch.manual_seed(0)
    return TrimapGuidedNet()


GUIDED = MethodSpec(
    name="guided_net",
    family="trimap-based",
    factory="bench_toys:build_guided",
    summary="a trainable trimap-based toy",
    citation="mattezoo test suite",
)


class AlwaysFails:
    """Classical, but every call raises: the bench must report it and go on."""

    def __call__(self, image, trimap):
        raise RuntimeError("broken_keyer always fails (bench test)")


BROKEN = MethodSpec(
    name="broken_keyer",
    family="classical",
    factory="bench_toys:AlwaysFails",
    summary="a classical method that always raises",
    citation="mattezoo test suite",
)


class BenchToyPlugin:
    """Registers tiny_net and guided_net (with training recipes) and broken_keyer."""

    @hookimpl
    def mattezoo_register_methods(self):
        return [TINY, GUIDED, BROKEN]

    @hookimpl
    def mattezoo_training_recipe(self, spec):
        if spec.name not in ("tiny_net", "guided_net"):
            return None
        from mattezoo.train import Recipe, Stage

        def loss(model, batch):
            pred = model(batch["image"]) if spec.name == "tiny_net" else model(batch["image"], batch["trimap"])
            return {"loss": torch.nn.functional.l1_loss(pred, batch["alpha"])}

        needs = ("image", "alpha") if spec.name == "tiny_net" else ("image", "alpha", "trimap")
        return Recipe(stages=(Stage("main", loss),), lr=1e-2, needs=needs, description="L1 on alpha")
