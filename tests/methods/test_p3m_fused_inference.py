"""P3M-Net's fused inference passes (``inference_maps``): same outputs as the plain pass, less work."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.fusion import FusedConv2d
from mattezoo_methods.p3m.basic import build_basic
from mattezoo_methods.p3m.blocks import TFI, max_pool_k2
from mattezoo_methods.p3m.model import build_p3m_net
from mattezoo_methods.p3m.pooling import MaxPoolWithIndices

BOTH = ("global_logits", "local")


def randomised(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics (a fresh model's are the identity, which folding would not exercise)."""
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return net.eval()


def plain_maps(net, image):
    net.fused_inference = False
    try:
        return net.inference_maps(image)
    finally:
        net.fused_inference = True


def assert_maps_close(got, expected):
    torch.testing.assert_close(got.local, expected.local, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.global_logits, expected.global_logits, rtol=1e-4, atol=1e-4)


def fused_module(net, names=BOTH):
    return net._fused_passes[names].module()


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return randomised(build_p3m_net())


@pytest.mark.parametrize("build", [
    lambda: build_p3m_net(),
    lambda: build_p3m_net(tfi=True, sbfi=False, dbfi=True),
    lambda: build_p3m_net(tfi=False, sbfi=True, dbfi=False),
    build_basic,
    lambda: build_p3m_net(backbone="swin_t"),
], ids=["p3m_net", "tfi+dbfi", "sbfi", "basic", "swin_t"])
def test_fused_pass_equals_the_plain_pass(build):
    torch.manual_seed(1)
    model = randomised(build(), seed=1)
    image = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = plain_maps(model, image)
        got = model.inference_maps(image)
    assert model._fused_passes, "the fused pass was not used"
    assert_maps_close(got, expected)
    assert sum(isinstance(m, FusedConv2d) for m in fused_module(model).modules()) > 0


def test_no_batchnorm_or_side_output_survives_in_the_fused_pass(net):
    with torch.inference_mode():
        net.inference_maps(torch.rand(1, 3, 64, 64))
    fused = fused_module(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    # Every conv call of the model is there, fused (TFI calls its shared projection three
    # times), except dBFI's three side heads (conv2), which feed only the side outputs
    # that inference does not return.
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    calls = convs + 2 * sum(isinstance(m, TFI) for m in net.modules())
    assert sum(isinstance(m, FusedConv2d) for m in fused.modules()) == calls - 3
    assert not any(isinstance(m, torch.nn.Conv2d) for m in fused.modules())


def test_each_pass_computes_only_what_it_returns(net):
    image = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        both = net.inference_maps(image)
        seg = net.inference_maps(image, local=False)
        matte = net.inference_maps(image, global_logits=False)
    assert seg.local is None and matte.global_logits is None
    torch.testing.assert_close(seg.global_logits, both.global_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(matte.local, both.local, rtol=0, atol=1e-6)

    def convs(names):
        return sum(isinstance(m, FusedConv2d) for m in fused_module(net, names).modules())

    # The encoder is shared; ½-scale HYBRID drops the whole matting decoder, full scale the last segmentation stages.
    assert convs(("global_logits",)) < convs(("local",)) < convs(BOTH)
    with pytest.raises(InvalidOptionError, match="at least one"):
        net.inference_maps(image, global_logits=False, local=False)


@pytest.mark.parametrize("image,message", [
    (torch.rand(1, 3, 64, 70), "multiples of 32"),
    (torch.rand(1, 1, 64, 64), r"\[B,3,H,W\]"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "float"),
])
def test_inference_maps_refuses_what_a_pass_cannot_take(net, image, message):
    with torch.no_grad(), pytest.raises(InputError, match=message):
        net.inference_maps(image)


def test_the_fused_pass_pools_with_int32_indices_and_leaves_the_model_at_int64(net):
    with torch.inference_mode():
        net.inference_maps(torch.rand(1, 3, 64, 64))
    pools = [m for m in fused_module(net).modules() if isinstance(m, MaxPoolWithIndices)]
    assert len(pools) == 5 and all(p.index_dtype == torch.int32 for p in pools)
    assert all(m.index_dtype == torch.int64 for m in net.modules() if isinstance(m, MaxPoolWithIndices))


def test_the_fused_pass_follows_new_weights():
    torch.manual_seed(3)
    model = randomised(build_p3m_net(), seed=3)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model.inference_maps(image)
        other = randomised(build_p3m_net(), seed=4)
        model.load_state_dict(other.state_dict())
        after = model.inference_maps(image)
        expected = plain_maps(model, image)
    assert not torch.allclose(after.local, before.local)
    assert_maps_close(after, expected)


def test_training_autograd_and_the_switch_use_the_plain_pass():
    torch.manual_seed(5)
    model = randomised(build_p3m_net(), seed=5)
    image = torch.rand(1, 3, 64, 64)
    keys = list(model.state_dict())
    model.inference_maps(image)  # autograd on: plain pass, differentiable
    model.fused_inference = False
    with torch.no_grad():
        model.inference_maps(image)
    model.fused_inference = True
    with torch.no_grad():
        model.train().inference_maps(image)  # training mode: BatchNorm uses batch statistics
    assert model._fused_passes == {}
    with torch.no_grad():
        model.eval().inference_maps(image)
    assert list(model._fused_passes) == [BOTH]
    assert list(model.state_dict()) == keys  # the fused copy is not part of the model's state
    model.set_pooling("torch")
    assert model._fused_passes == {}  # a new pooling backend means a new trace


def test_infer_uses_the_fused_passes_and_matches_the_plain_ones(net):
    image = torch.rand(1, 3, 70, 45, generator=torch.Generator().manual_seed(6))
    for strategy in ("hybrid", "resize"):
        fused = net.infer_details(image, strategy=strategy)
        net.fused_inference = False
        try:
            plain = net.infer_details(image, strategy=strategy)
        finally:
            net.fused_inference = True
        assert torch.equal(fused.trimap, plain.trimap)
        torch.testing.assert_close(fused.alpha, plain.alpha, rtol=0, atol=1e-5)


@pytest.mark.parametrize("stride", [2, 4, 8])
@pytest.mark.parametrize("size", [(16, 16), (17, 23), (2, 9)])
def test_max_pool_k2_is_max_pool2d(stride, size):
    x = torch.randn(2, 3, *size)
    x[0, 0, 0, 0] = float("nan")
    expected = F.max_pool2d(x, kernel_size=2, stride=stride)
    with torch.no_grad():
        got = max_pool_k2(x.contiguous(memory_format=torch.channels_last), stride)
    torch.testing.assert_close(got, expected, equal_nan=True, rtol=0, atol=0)


def test_max_pool_k2_gives_a_tie_gradient_to_the_first_maximum_like_max_pool2d():
    x = torch.ones(1, 1, 2, 2, requires_grad=True)
    max_pool_k2(x, 2).sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.needs_cuda
def test_the_fused_pass_on_cuda_equals_the_plain_pass():
    torch.manual_seed(8)
    model = randomised(build_p3m_net(), seed=8).cuda()
    image = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(9)).cuda()
    with torch.no_grad():
        expected = plain_maps(model, image)
        got = model.inference_maps(image)
    assert_maps_close(got, expected)
