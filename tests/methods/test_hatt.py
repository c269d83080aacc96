"""HAttMatting: backbone layout, attention modules, the test-time procedure, the hybrid loss and training.

The authors published no network code and no weights
(wukaoliu/CVPR2020-HAttMatting holds a README, figures and a data-composition
script), so there is no official key list or official output to compare
with. The tests check the structure and behaviour against independent
references instead:

* ``data/hatt_backbone_keys.json``: the ``state_dict`` keys, shapes and
  parameter count of the ImageNet ResNeXt-101 32×8d (recorded once from
  timm's ``resnext101_32x8d``, torchvision's layout), which the backbone must
  equal so that the ImageNet file loads with ``strict=True``;
* timm's ResNeXt-101 32×8d with ``output_stride=16``: the backbone's features;
* the attention modules, the parameter counts of the heads, the padding,
  SSIM (skimage) and the loss terms, restated here with plain formulas.

The conformance run over every registered method (tests/test_conformance.py)
covers forward, backward, odd sizes and batches.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mattezoo
from mattezoo.data import SyntheticP3M
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo.testing import sample_inputs
from mattezoo.train import TrainConfig, load_training_checkpoint, train_method
from mattezoo.weights import load_into
from mattezoo_methods.hatt.blocks import ChannelAttention, PatchDiscriminator, SpatialAttention
from mattezoo_methods.hatt.model import HAttMatting, HAttOutput, build_hatt
from mattezoo_methods.hatt.recipe import HATT_WEIGHTS, hatt_losses, hatt_recipe, ssim

from adam_steps import adam_steps
from disc_batches import disc_batch
from seeded_weights import seeded_tensor as shared_seeded_tensor

DATA = Path(__file__).parent / "data"


def imagenet_layout() -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    doc = json.loads((DATA / "hatt_backbone_keys.json").read_text())
    return [(k, tuple(shape)) for k, shape in doc["keys"]], doc["parameter_count"]


def seeded_tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixture's weights: linear layers He-scaled too, and the BatchNorm scale small at the end of a
    residual branch (``bn3``), or 33 blocks compound."""
    return shared_seeded_tensor(name, shape, kernel_dims=2, norm_gain=0.1 if name.endswith(".bn3.weight") else 1.0)

def seeded_state(model: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {k: seeded_tensor(prefix + k, tuple(v.shape)) for k, v in model.state_dict().items()}


def meta_model(**options) -> HAttMatting:
    with torch.device("meta"):
        return build_hatt(**options)


@pytest.fixture(scope="module")
def seeded_model() -> HAttMatting:
    model = meta_model()
    model.to_empty(device="cpu")
    model.load_state_dict(seeded_state(model), strict=True)
    model.mean.copy_(torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1))  # buffers outside the state dict
    model.std.copy_(torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1))
    return model.eval()


def random_image(height: int, width: int, seed: int = 2020) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


# --- structure ---------------------------------------------------------------------------------


def test_backbone_has_the_imagenet_resnext101_32x8d_layout():
    keys, count = imagenet_layout()
    backbone = meta_model().backbone
    assert [(k, tuple(v.shape)) for k, v in backbone.state_dict().items()] == keys
    assert sum(p.numel() for p in backbone.parameters()) == count == 88_791_336


def _conv(cin, cout, k=(3, 3), bias=False):
    return cin * cout * k[0] * k[1] + (cout if bias else 0)


def test_head_parameter_counts_follow_the_described_modules():
    model = meta_model()
    bn = lambda c: 2 * c  # noqa: E731  (scale and shift)
    expected = {
        # ASPP: 1×1, three dilated 3×3 (conv + BN each), image pooling (conv with bias), 1×1 projection of 5·256
        "aspp": _conv(2048, 256, (1, 1)) + bn(256) + 3 * (_conv(2048, 256) + bn(256)) + _conv(2048, 256, (1, 1), True)
        + _conv(1280, 256, (1, 1)) + bn(256),
        "distillation": (256 * 16 + 16) + (16 * 256 + 256),  # squeeze-excitation with reduction 16
        "high_conv": _conv(256, 256) + bn(256),
        "low_conv": _conv(256, 256) + bn(256),
        # two paths: 1×7 (or 7×1) to 128 + BN, 7×1 (or 1×7) to 1 + BN
        "spatial_attention": 2 * (_conv(256, 128, (1, 7)) + bn(128) + _conv(128, 1, (7, 1)) + bn(1)),
        "fusion": _conv(512, 256) + bn(256) + _conv(256, 64) + bn(64) + _conv(64, 1, bias=True),
        # PatchGAN 70×70 on 4 channels: 64, 128, 256, 512 (4×4 convs, BN after all but the first), 1
        "discriminator": _conv(4, 64, (4, 4), True) + _conv(64, 128, (4, 4)) + bn(128) + _conv(128, 256, (4, 4)) + bn(256)
        + _conv(256, 512, (4, 4)) + bn(512) + _conv(512, 1, (4, 4), True),
    }
    counts = {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in expected}
    assert counts == expected
    total = sum(p.numel() for p in model.parameters())
    assert total == 88_791_336 + sum(expected.values()) == 110_071_358
    generator_only = meta_model(discriminator=False)
    assert generator_only.discriminator is None
    assert not any(k.startswith("discriminator.") for k in generator_only.state_dict())
    assert sum(p.numel() for p in generator_only.parameters()) == total - expected["discriminator"]


def test_backbone_features_equal_timm_resnext_at_output_stride_16(seeded_model):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        reference = timm.create_model("resnext101_32x8d", pretrained=False, output_stride=16)
    reference.to_empty(device="cpu")
    reference.load_state_dict(seeded_model.backbone.state_dict(), strict=True)
    reference.eval()
    x = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        block1, block4 = seeded_model.backbone.features(x)
        ref1, ref4 = reference.forward_intermediates(x, indices=[1, 4], intermediates_only=True)
    assert block1.shape == (1, 256, 8, 12) and block4.shape == (1, 2048, 2, 3)
    torch.testing.assert_close(block1, ref1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(block4, ref4, rtol=1e-4, atol=1e-4)


def test_imagenet_file_loads_into_the_backbone_strictly(tmp_path):
    keys, _ = imagenet_layout()
    state = {k: seeded_tensor("backbone." + k, shape) for k, shape in keys}
    path = tmp_path / "resnext101_32x8d-8ba56ff5.pth"
    torch.save(state, path)
    model = mattezoo.create_method("hatt", backbone_weights=str(path), discriminator=False)
    assert torch.equal(model.backbone.layer4[2].conv2.weight, state["layer4.2.conv2.weight"])
    assert torch.equal(model.backbone.bn1.running_var, state["bn1.running_var"])
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    with pytest.raises(CheckpointError, match=r"missing keys: fc\.bias, fc\.weight"):
        model.load_backbone(path)


def test_a_generator_only_state_dict_needs_discriminator_false():
    state = {k: v for k, v in meta_model().state_dict().items() if not k.startswith("discriminator.")}
    with pytest.raises(CheckpointError, match=r"missing keys: discriminator\.layers\.0\.bias"):
        load_into(meta_model(), state)
    load_into(meta_model(discriminator=False), state)  # fits exactly


# --- attention modules -------------------------------------------------------------------------


def test_channel_attention_is_a_squeeze_excitation_gate():
    torch.manual_seed(0)
    module = ChannelAttention(32, 4)
    x = torch.randn(2, 32, 5, 7)
    out, weights = module(x)
    squeeze = x.mean(dim=(2, 3))
    hidden = torch.clamp(squeeze @ module.fc1.weight.T + module.fc1.bias, min=0)
    expected = 1 / (1 + torch.exp(-(hidden @ module.fc2.weight.T + module.fc2.bias)))
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, x * expected[:, :, None, None])
    assert module.fc1.out_features == 8 and weights.shape == (2, 32)


def test_spatial_attention_sums_a_row_column_and_a_column_row_path():
    torch.manual_seed(1)
    module = SpatialAttention(16, 7)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.normal_(1, 0.1)
            m.bias.data.normal_(0, 0.1)
    module.eval()
    x = torch.randn(2, 16, 9, 11)

    def bn(t, m):
        scale = m.weight / torch.sqrt(m.running_var + m.eps)
        return (t - m.running_mean[:, None, None]) * scale[:, None, None] + m.bias[:, None, None]

    def path(p, first_pad, second_pad):
        conv1, bn1, _, conv2, bn2 = p
        hidden = torch.clamp(bn(F.conv2d(x, conv1.weight, padding=first_pad), bn1), min=0)
        return bn(F.conv2d(hidden, conv2.weight, padding=second_pad), bn2)

    assert module.row_col[0].weight.shape == (8, 16, 1, 7) and module.row_col[3].weight.shape == (1, 8, 7, 1)
    assert module.col_row[0].weight.shape == (8, 16, 7, 1) and module.col_row[3].weight.shape == (1, 8, 1, 7)
    expected = torch.sigmoid(path(module.row_col, (0, 3), (3, 0)) + path(module.col_row, (3, 0), (0, 3)))
    with torch.no_grad():
        got = module(x)
    assert got.shape == (2, 1, 9, 11)
    torch.testing.assert_close(got, expected)
    assert float(got.min()) < 0.5 < float(got.max())  # no ReLU before the sigmoid: the gate can close


# --- the network ---------------------------------------------------------------------------------


def test_forward_normalises_with_imagenet_statistics_and_reports_both_attentions(seeded_model):
    image = random_image(32, 48)
    seen = {}
    hook = seeded_model.backbone.conv1.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0].clone()))
    try:
        with torch.no_grad():
            out = seeded_model.forward_intermediates(image)
    finally:
        hook.remove()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(seen["x"], (image - mean) / std)
    assert isinstance(out, HAttOutput)
    assert out.spatial_attention.shape == (1, 1, 8, 12) and out.channel_weights.shape == (1, 256)
    assert out.alpha.shape == out.logits.shape == (1, 1, 32, 48)
    torch.testing.assert_close(out.alpha, torch.sigmoid(out.logits))
    assert 0.02 < float(out.alpha.std())  # the seeded weights give a matte that varies
    with torch.no_grad():
        assert torch.equal(seeded_model(image), out.alpha)


def test_a_closed_spatial_gate_removes_the_low_level_cues(seeded_model):
    image = random_image(32, 32, seed=7)
    gates = [seeded_model.spatial_attention.row_col[4], seeded_model.spatial_attention.col_row[4]]
    saved = [g.bias.detach().clone() for g in gates] + [seeded_model.low_conv[0].weight.detach().clone()]
    try:
        with torch.no_grad():
            for g in gates:
                g.bias.fill_(-60.0)  # sigmoid(-120 + small) == 0 in float32
            closed = seeded_model.forward_intermediates(image)
            assert float(closed.spatial_attention.max()) == 0.0
            seeded_model.low_conv[0].weight.mul_(-3.0)
            assert torch.equal(seeded_model(image), closed.alpha)  # the cues no longer reach the matte
            for g, b in zip(gates, saved):
                g.bias.copy_(b)
            opened = seeded_model(image)
            assert float((opened - closed.alpha).abs().max()) > 1e-3  # with the gate open they do
    finally:
        with torch.no_grad():
            for g, b in zip(gates, saved):
                g.bias.copy_(b)
            seeded_model.low_conv[0].weight.copy_(saved[-1])


def test_the_discriminator_never_runs_at_inference(seeded_model):
    def refuse(*_):
        raise AssertionError("the discriminator ran")

    hook = seeded_model.discriminator.register_forward_pre_hook(refuse)
    try:
        with torch.no_grad():
            seeded_model(random_image(32, 32))
        mattezoo.predict(_as_method(seeded_model), (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8))
    finally:
        hook.remove()


def _as_method(model):
    model.mattezoo_spec = mattezoo.get_method("hatt")
    return model


# --- test-time procedure -------------------------------------------------------------------------


@pytest.mark.parametrize("height,width,mode", [(40, 50, "reflect"), (5, 7, "edge")])
def test_infer_pads_bottom_right_to_multiples_of_16_and_crops(seeded_model, height, width, mode):
    image = random_image(height, width, seed=height)
    pad_h, pad_w = (-height) % 16, (-width) % 16
    padded = np.pad(image.numpy(), ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    with torch.no_grad():
        expected = seeded_model(torch.from_numpy(padded))[..., :height, :width]
    got = seeded_model.infer(image)
    assert got.shape == (1, 1, height, width)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_max_side_shrinks_the_pass_and_resizes_the_matte_back(seeded_model):
    image = random_image(48, 64, seed=3)
    shapes = []
    hook = seeded_model.backbone.conv1.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape)))
    try:
        alpha = seeded_model.infer(image, max_side=32)
    finally:
        hook.remove()
    assert shapes == [(1, 3, 32, 32)]  # 48×64 -> 24×32, padded to 32×32
    small = F.interpolate(image, size=(24, 32), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    with torch.no_grad():
        expected = seeded_model(F.pad(small, (0, 0, 0, 8), mode="reflect"))[..., :24, :32]
    expected = F.interpolate(expected, size=(48, 64), mode="bilinear", align_corners=False)
    assert alpha.shape == (1, 1, 48, 64)
    torch.testing.assert_close(alpha, expected, rtol=0, atol=1e-6)
    with pytest.raises(InvalidOptionError, match="max_side must be an int >= 16"):
        seeded_model.infer(image, max_side=10)


@pytest.mark.parametrize(
    "image,message",
    [
        (torch.rand(1, 4, 16, 16), r"\[B,3,H,W\]"),
        (torch.rand(3, 16, 16), r"\[B,3,H,W\]"),
        ((torch.rand(1, 3, 16, 16) * 255).to(torch.uint8), "divide uint8 images by 255"),
        (torch.full((1, 3, 16, 16), float("nan")), "NaN"),
        (torch.full((1, 3, 16, 16), 2.0), r"values in \[0,1\]"),
        (np.zeros((16, 16, 3), np.float32), "got ndarray"),
    ],
)
def test_infer_refuses_bad_images(seeded_model, image, message):
    with pytest.raises(InputError, match=message):
        seeded_model.infer(image)


def test_trimaps_and_sizes_the_network_cannot_take_are_refused(seeded_model):
    with pytest.raises(InputError, match="trimap-free and takes no trimap"):
        seeded_model.infer(random_image(16, 16), torch.full((1, 1, 16, 16), 0.5))
    with pytest.raises(InputError, match="multiples of 16.*infer\\(\\) takes any size"):
        seeded_model(random_image(40, 48))
    image, trimap, _ = sample_inputs(20, 20)
    with pytest.raises(InputError, match="trimap-free"):
        mattezoo.predict(_as_method(seeded_model), image, trimap)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"max_side": 8}, "max_side must be an int >= 16"),
        ({"max_side": "big"}, "max_side must be an int"),
        ({"discriminator": "yes"}, "discriminator must be True or False"),
    ],
)
def test_bad_options_are_refused_before_building(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        build_hatt(**options)


# --- registration -----------------------------------------------------------------------------


def test_paper_rows_of_p3m_tables_3_and_4():
    spec = mattezoo.get_method("hatt")
    table3 = {r.protocol: dict(r.metrics) for r in spec.paper(source="P3M Table 3")}
    assert table3 == {
        "B:B": {"SAD": 25.99, "MSE": 0.0054, "MAD": 0.0152},
        "B:N": {"SAD": 26.5, "MSE": 0.0055, "MAD": 0.0155},
        "N:B": {"SAD": 35.02, "MSE": 0.0103, "MAD": 0.0204},
        "N:N": {"SAD": 22.93, "MSE": 0.0040, "MAD": 0.0133},
    }
    private = spec.paper(source="P3M Table 4", test_set="P3M-500-P")[0].metrics
    normal = spec.paper(source="P3M Table 4", test_set="P3M-500-NP")[0].metrics
    assert private["SAD"] == table3["B:B"]["SAD"] and private["SAD-T"] == 11.03 and private["CONN"] == 25.29
    assert normal["SAD"] == 30.53 and normal["GRAD"] == 19.88 and len(normal) == 8
    assert spec.family == "trimap-free" and not spec.weights and spec.input_multiple == 16


# --- losses and training -----------------------------------------------------------------------


def test_ssim_equals_skimage_with_gaussian_weights():
    metrics = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(4)
    target = torch.rand(2, 1, 24, 30, generator=gen)
    pred = (target + 0.2 * torch.randn(2, 1, 24, 30, generator=gen)).clamp(0, 1)
    pred[1] = F.avg_pool2d(target[1:2], 5, 1, 2)[0]  # a blurred matte
    got = ssim(pred, target)
    for i in range(2):
        expected = metrics.structural_similarity(
            pred[i, 0].double().numpy(), target[i, 0].double().numpy(), data_range=1.0, gaussian_weights=True,
            sigma=1.5, use_sample_covariance=False,
        )
        assert abs(float(got[i]) - expected) < 1e-5, (i, float(got[i]), expected)
    with pytest.raises(InputError, match="at least 11×11"):
        ssim(pred[..., :10], target[..., :10])


def _toy_case(seed: int = 0):
    """A generator of one parameter map and the real PatchGAN, on a 32×32 batch of 2."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    logits = torch.nn.Parameter(torch.randn(2, 1, 32, 32, generator=gen))
    model = SimpleNamespace(discriminator=PatchDiscriminator())
    alpha = (torch.rand(2, 1, 32, 32, generator=gen) > 0.5).float()
    batch = {"image": torch.rand(2, 3, 32, 32, generator=gen), "alpha": alpha}
    out = SimpleNamespace(alpha=torch.sigmoid(logits))
    return logits, model, batch, out


def test_hybrid_loss_weights_its_parts_as_the_paper():
    logits, model, batch, out = _toy_case()
    parts = hatt_losses(model, out, batch)
    pred, alpha, image = out.alpha, batch["alpha"], batch["image"]
    with torch.no_grad():
        real = model.discriminator(image, alpha)
        fake = model.discriminator(image, pred)
    softplus = F.softplus
    torch.testing.assert_close(parts["mse"], ((pred - alpha) ** 2).mean())
    torch.testing.assert_close(parts["ssim"], 1 - ssim(pred, alpha).mean())
    torch.testing.assert_close(parts["adversarial"], softplus(-fake).mean())  # -log sigmoid(D(fake))
    torch.testing.assert_close(parts["discriminator"], 0.5 * (softplus(-real).mean() + softplus(fake).mean()))
    assert HATT_WEIGHTS == {"mse": 1.0, "ssim": 0.1, "adversarial": 0.05}
    torch.testing.assert_close(parts["generator"], parts["mse"] + 0.1 * parts["ssim"] + 0.05 * parts["adversarial"])
    torch.testing.assert_close(parts["loss"], parts["generator"] + parts["discriminator"])
    plain = hatt_losses(model, out, batch, adversarial=False)
    torch.testing.assert_close(plain["loss"], parts["mse"] + 0.1 * parts["ssim"])
    assert float(plain["discriminator"]) == 0.0


def test_each_network_gets_only_its_own_gradients():
    logits, model, batch, out = _toy_case(1)
    d_params = list(model.discriminator.parameters())
    parts = hatt_losses(model, out, batch)
    total = torch.autograd.grad(parts["loss"], [logits, *d_params], retain_graph=True)
    from_generator = torch.autograd.grad(parts["generator"], [logits], retain_graph=True)[0]
    from_discriminator = torch.autograd.grad(parts["discriminator"], d_params, retain_graph=True)
    torch.testing.assert_close(total[0], from_generator)  # the generator sees its own objective only
    for got, own in zip(total[1:], from_discriminator):
        torch.testing.assert_close(got, own)  # the discriminator likewise
    assert all(g is None for g in torch.autograd.grad(parts["generator"], d_params, retain_graph=True, allow_unused=True))
    assert torch.autograd.grad(parts["discriminator"], [logits], retain_graph=True, allow_unused=True)[0] is None
    adversarial_grad = torch.autograd.grad(parts["adversarial"], [logits])[0]
    assert float(adversarial_grad.abs().sum()) > 0  # the generator still learns from the discriminator's verdict


def test_recipe_options_and_the_missing_discriminator_are_refused():
    recipe = hatt_recipe()
    assert recipe.lr == 1e-4 and recipe.needs == ("image", "alpha") and "PatchGAN" in recipe.description
    with pytest.raises(InvalidOptionError, match="unknown HAttMatting loss weight"):
        hatt_recipe({"l1": 1.0})
    with pytest.raises(InvalidOptionError, match="adversarial must be True or False"):
        hatt_recipe(adversarial="no")
    _, _, batch, out = _toy_case()
    with pytest.raises(InvalidOptionError, match="discriminator=True.*adversarial=False"):
        hatt_losses(SimpleNamespace(discriminator=None), out, batch)


def synthetic_batch(size: int = 32, batch: int = 2) -> dict[str, torch.Tensor]:
    return disc_batch(size, batch, ramp=3)


def test_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    model = build_hatt().train()
    recipe = hatt_recipe()
    batch = synthetic_batch()
    history = [{k: float(v) for k, v in h.items()} for h in adam_steps(recipe.stages[0].loss, model, batch, 4, lr=1e-4)]
    assert all(math.isfinite(h["loss"]) for h in history)
    assert history[-1]["mse"] < 0.8 * history[0]["mse"], history
    assert history[-1]["ssim"] < history[0]["ssim"], history
    assert history[-1]["discriminator"] < history[0]["discriminator"], history


def test_the_engine_trains_and_checkpoints_the_discriminator(tmp_path):
    ds = SyntheticP3M("train", n=2, size=48, seed=3)
    cfg = TrainConfig(method="hatt", steps=1, batch=2, size=32, seed=1, log_every=1, progress=False)
    result = train_method(cfg, [ds[i] for i in range(len(ds))], "blurred", tmp_path)
    assert {"discriminator", "generator", "mse", "ssim", "adversarial"} <= set(result.history[0])
    saved = load_training_checkpoint(result.checkpoint)
    assert any(k.startswith("discriminator.") for k in saved["model"])  # resumed with the rest
    # Adam's parameters follow model.parameters() order; the discriminator's come last.
    params = [n for n, _ in result.model.named_parameters()]
    moments = saved["optimizer"]["state"]
    first_disc = params.index("discriminator.layers.0.weight")
    assert float(moments[first_disc]["exp_avg"].abs().sum()) > 0  # it was trained in the engine's step
    assert float(moments[params.index("fusion.2.weight")]["exp_avg"].abs().sum()) > 0
