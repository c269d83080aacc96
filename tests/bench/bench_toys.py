"""Toy methods for the bench tests: a trainable two-layer net and a classical method that always fails."""

from __future__ import annotations

import torch

from mattezoo import MethodSpec, hookimpl

from toy_plugins import TINY


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
    """Registers tiny_net (with a training recipe) and broken_keyer."""

    @hookimpl
    def mattezoo_register_methods(self):
        return [TINY, BROKEN]

    @hookimpl
    def mattezoo_training_recipe(self, spec):
        if spec.name != "tiny_net":
            return None
        from mattezoo.train import Recipe, Stage

        def loss(model, batch):
            pred = model(batch["image"])
            return {"loss": torch.nn.functional.l1_loss(pred, batch["alpha"])}

        return Recipe(stages=(Stage("main", loss),), lr=1e-2, needs=("image", "alpha"), description="L1 on alpha")
