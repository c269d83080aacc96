"""Every registered method's inference, and every trainable method's training step, at the quick preset's size.

Groups ``method:<name>`` (one ``run_method`` call on a quick-preset test
portrait, with its ground-truth trimap for the methods that take one) and
``train:<name>`` (one optimiser step of the method's recipe on a quick-preset
batch: forward, losses, backward, Adam). New methods are picked up from the
registry, so their speed is tracked with no new code. See README.md for a
saved baseline and ``--benchmark-compare``.
"""

from __future__ import annotations

import math

import pytest
import torch

from mattezoo import create_method, get_method, list_methods
from mattezoo.bench.presets import PRESETS
from mattezoo.data import SyntheticP3M
from mattezoo.inference import image_to_tensor, run_method, trimap_to_tensor
from train_step import Stepper

QUICK = PRESETS["quick"]


def _trainable() -> list[str]:
    try:
        from mattezoo.train import trainable_methods
    except ImportError:  # the training engine is optional for inference benchmarks
        return []
    return trainable_methods()


@pytest.fixture(scope="module")
def portrait():
    return SyntheticP3M("P3M-500-P", 1, QUICK.size, QUICK.seed)[0]


@pytest.mark.parametrize("name", list_methods())
def test_method_inference(benchmark, name, portrait):
    benchmark.group = f"method:{name}"
    benchmark.extra_info["size"] = QUICK.size
    method = create_method(name)
    spec = get_method(name)
    image = image_to_tensor(portrait.blurred)
    trimap = trimap_to_tensor(portrait.trimap) if spec.needs_trimap else None
    alpha = run_method(method, image, trimap)
    assert alpha.shape == (1, 1, QUICK.size, QUICK.size) and torch.isfinite(alpha).all()
    if trimap is not None:  # known regions of the trimap are kept
        assert torch.equal(alpha[trimap == 1.0], torch.ones_like(alpha[trimap == 1.0]))
        assert torch.equal(alpha[trimap == 0.0], torch.zeros_like(alpha[trimap == 0.0]))
    benchmark(run_method, method, image, trimap)


@pytest.mark.parametrize("name", _trainable())
def test_train_step(benchmark, name):
    from mattezoo.train import TrainingBatches, find_recipe

    benchmark.group = f"train:{name}"
    benchmark.extra_info.update(batch=QUICK.batch, crop=QUICK.crop)
    spec = get_method(name)
    recipe = find_recipe(spec)
    torch.manual_seed(0)
    model = create_method(name).train()
    samples = SyntheticP3M("train", QUICK.batch, QUICK.size, QUICK.seed)[:]
    batch = TrainingBatches(samples, "blurred", batch=QUICK.batch, size=QUICK.crop, needs=recipe.needs).batch_at(0)
    step = Stepper(model, batch, recipe.stages[0].loss, QUICK.lr or recipe.lr, channels_last=False, amp=None,
                   fused_adam=True)

    first = float(step())
    assert math.isfinite(first)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    benchmark(step)
