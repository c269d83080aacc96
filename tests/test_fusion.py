"""mattezoo.fusion: BatchNorm folding, fused conv chains, and the rebuild-on-change cache."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mattezoo.fusion import FusedConv2d, FusedInference, fold_batchnorm, fuse_for_inference, weights_signature


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so folding has something to fold."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)
    return model


class Block(nn.Module):
    """Every chain the fuser knows: conv-BN-ReLU, a ResNet end (add then ReLU), add after ReLU, a bare conv."""

    def __init__(self, ch: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, ch, 3, padding=2, dilation=2)
        self.bn3 = nn.BatchNorm2d(ch, affine=False)
        self.down = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)
        self.head = nn.Conv2d(2 * ch, 1, 1)

    def forward(self, x):
        a = torch.relu(self.bn1(self.conv1(x)))
        b = F.relu(self.bn2(self.conv2(a)) + a)  # add, then ReLU
        c = self.bn3(self.conv3(b)).relu() + b  # ReLU, then add
        return self.head(self.down(c)), c


def make_block(seed: int = 0) -> Block:
    torch.manual_seed(seed)
    return randomise_batchnorm(Block(), seed).eval()


def fused_convs(gm: torch.fx.GraphModule) -> list[FusedConv2d]:
    return [m for m in gm.modules() if isinstance(m, FusedConv2d)]


def test_fold_batchnorm_equals_conv_then_batchnorm():
    torch.manual_seed(1)
    for bias, affine in [(False, True), (True, True), (True, False)]:
        conv = nn.Conv2d(4, 6, 3, padding=1, bias=bias)
        bn = randomise_batchnorm(nn.BatchNorm2d(6, affine=affine), seed=2).eval()
        weight, b = fold_batchnorm(conv, bn)
        x = torch.randn(2, 4, 9, 7)
        torch.testing.assert_close(F.conv2d(x, weight, b, padding=1), bn(conv(x)), rtol=1e-5, atol=1e-5)


def test_fold_without_batchnorm_copies_the_conv():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    weight, bias = fold_batchnorm(conv, None)
    assert bias is None and torch.equal(weight, conv.weight) and weight.data_ptr() != conv.weight.data_ptr()


def test_every_chain_is_fused_and_the_outputs_match():
    block = make_block()
    gm = fuse_for_inference(block)
    convs = fused_convs(gm)
    assert [(c.relu, c.add) for c in convs] == [(True, None), (True, "before_relu"), (True, "after_relu"),
                                                 (False, None), (False, None)]
    # No BatchNorm, ReLU or add survives: each lives inside a fused conv now.
    kinds = [(n.op, n.target) for n in gm.graph.nodes]
    assert not any(isinstance(gm.get_submodule(t), nn.BatchNorm2d) for op, t in kinds if op == "call_module")
    assert not any(op in ("call_function", "call_method") for op, _ in kinds if _ != "getitem")
    x = torch.rand(2, 3, 16, 12)
    with torch.no_grad():
        expected = block(x)
        for mode in (torch.no_grad, torch.inference_mode):
            with mode():
                got = gm(x)
            for g, e in zip(got, expected):
                torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_the_fallback_path_matches_the_onednn_path(monkeypatch):
    block = make_block(3)
    gm = fuse_for_inference(block)
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        onednn = gm(x)
        monkeypatch.setattr(FusedConv2d, "_use_onednn", lambda self, x, other: False)
        plain = gm(x)
    for a, b in zip(onednn, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_value_with_two_users_ends_the_chain():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return torch.relu(y), y * 2  # the BN output is needed unactivated too

    torch.manual_seed(0)
    model = randomise_batchnorm(Shared()).eval()
    gm = fuse_for_inference(model)
    (conv,) = fused_convs(gm)
    assert not conv.relu and conv.add is None
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        for g, e in zip(gm(x), model(x)):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_a_broadcast_residual_still_adds_correctly():
    class Broadcast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x, bias):
            return torch.relu(self.conv(x) + bias)

    model = Broadcast().eval()
    gm = fuse_for_inference(model)
    assert fused_convs(gm)[0].add == "before_relu"
    x, bias = torch.rand(2, 3, 5, 5), torch.randn(1, 4, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(gm(x, bias), model(x, bias), rtol=1e-5, atol=1e-5)


def test_fusion_needs_eval_mode_and_leaves_the_model_alone():
    block = make_block()
    with pytest.raises(ValueError, match="eval mode"):
        fuse_for_inference(copy.deepcopy(block).train())
    before = {k: v.clone() for k, v in block.state_dict().items()}
    fuse_for_inference(block)
    after = block.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(isinstance(m, (Block, nn.Conv2d, nn.BatchNorm2d)) for m in block.modules())


def test_the_fused_module_runs_backward_unfused():
    # Under autograd (input requiring grad) it takes the differentiable F.conv2d path.
    gm = fuse_for_inference(make_block())
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    out, _ = gm(x)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_reordered_weights_are_kept_per_input_shape():
    conv = FusedConv2d(nn.Conv2d(3, 4, 3, padding=1))
    with torch.inference_mode():
        for size in (8, 9, 8, 10, 11, 12):
            conv(torch.rand(1, 3, size, size))
    assert len(conv._packed) <= FusedConv2d._MAX_PACKED_SHAPES
    conv.double()
    assert conv._packed == {}  # a dtype or device change drops the reordered copies


def test_weights_signature_sees_in_place_writes_and_replacements():
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))
    sig = weights_signature(model)
    assert weights_signature(model) == sig
    with torch.no_grad():
        model[0].weight.add_(1)
    assert weights_signature(model) != sig
    sig = weights_signature(model)
    model.load_state_dict(model.state_dict())
    assert weights_signature(model) != sig  # load_state_dict copies in place
    sig = weights_signature(model)
    model.double()
    assert weights_signature(model) != sig


def test_fused_inference_rebuilds_when_the_weights_change():
    block = make_block()
    builds = []

    def build():
        builds.append(1)
        return block

    cache = FusedInference(build, block)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        first = cache(x)[0]
        cache(x)
        assert len(builds) == 1
        block.head.bias.add_(1.0)
        second = cache(x)[0]
    assert len(builds) == 2
    torch.testing.assert_close(second, first + 1.0, rtol=1e-5, atol=1e-5)


def test_finish_can_replace_submodules_of_the_fused_copy():
    block = make_block()
    seen = []
    cache = FusedInference(lambda: block, block, finish=lambda gm: seen.append(len(fused_convs(gm))))
    with torch.no_grad():
        cache(torch.rand(1, 3, 8, 8))
    assert seen == [5]


def test_convs_it_cannot_reproduce_are_left_as_they_are():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                          nn.Conv2d(3, 3, 3, padding="same"), nn.Conv2d(3, 1, 1)).eval()
    gm = fuse_for_inference(model)
    assert len(fused_convs(gm)) == 1  # only the last, plain one
    x = torch.rand(1, 2, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_fused_convs_match_the_module_and_use_cudnn(amp):
    block = make_block(7).cuda()
    gm = fuse_for_inference(block)
    x = torch.rand(2, 3, 32, 24, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        expected = block(x)
        got = gm(x)
    tol = 3e-2 if amp else 1e-4
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.float(), e.float(), rtol=tol, atol=tol)
    relu_convs = [c for c in fused_convs(gm) if c.relu]
    assert relu_convs and all(c._cudnn_error is None for c in relu_convs), [c._cudnn_error for c in relu_convs]
