"""P3M-Net: mattezoo's inference and training step next to the official implementation's way (same weights).

Groups ``method:p3m_net`` (one pass at 64² giving the segmentation logits and
the local matte: ``ours`` is ``inference_maps`` under ``torch.inference_mode``,
the fused pass of ``mattezoo.fusion`` with the compiled pool/unpool ops;
``official`` is the whole network with torch's pool/unpool, fp32, contiguous,
``torch.no_grad``) and
``train:p3m_net`` (one step of the recipe at 32² crops, batch 2). Small sizes
keep the default smoke run quick; ``benchmarks/speed_p3m.py`` and
``speed_train.py`` measure the real sizes and print ratios.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from mattezoo.registry import get_method
from mattezoo_methods.p3m.model import build_p3m_net
from train_step import Stepper


@pytest.fixture(scope="module")
def official_net():
    torch.manual_seed(0)
    return build_p3m_net(pooling="torch").eval()


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _forward(model, image, mode):
    with mode():
        return model.inference_maps(image).local


@pytest.mark.parametrize("variant", ["ours", "official"])
def test_p3m_net_inference(benchmark, variant, official_net, image):
    benchmark.group = "method:p3m_net"
    benchmark.extra_info["size"] = 64
    official_net.fused_inference = False
    expected = _forward(official_net, image, torch.no_grad)
    if variant == "ours":
        model, mode = copy.deepcopy(official_net).set_pooling("mattezoo"), torch.inference_mode
        model.fused_inference = True
    else:
        model, mode = official_net, torch.no_grad
    torch.testing.assert_close(_forward(model, image, mode), expected, rtol=0, atol=1e-4)
    benchmark(_forward, model, image, mode)


@pytest.mark.parametrize("variant", ["engine", "official"])
def test_p3m_net_train_step(benchmark, variant, official_net):
    from mattezoo.data import SyntheticP3M
    from mattezoo.train import TrainingBatches, find_recipe

    benchmark.group = "train:p3m_net"
    benchmark.extra_info.update(batch=2, crop=32)
    recipe = find_recipe(get_method("p3m_net"))
    batch = TrainingBatches(SyntheticP3M("train", 2, 64, 0)[:], "blurred", batch=2, size=32, needs=recipe.needs).batch_at(0)
    model = copy.deepcopy(official_net).train()
    if variant == "engine":
        model.set_pooling("mattezoo")
    step = Stepper(model, batch, recipe.stages[0].loss, recipe.lr, channels_last=False, amp=None,
                   fused_adam=variant == "engine")

    assert math.isfinite(float(step()))
    assert all(p.grad is not None for p in model.decoder_final_l.parameters())
    benchmark(step)
