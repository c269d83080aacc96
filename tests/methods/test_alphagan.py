"""AlphaGAN: structure against torchvision and hand-derived sizes, the unpooling path, the test strategies, the GAN step.

There is no official code or checkpoint (docs/alphagan.md), so nothing here
is compared with an official fixture. The independent references are:
torchvision's dilated ``resnet50`` and DeepLab v3 ``ASPP`` (same weights,
same outputs), parameter counts written out layer by layer, pix2pix's
PatchGAN arithmetic, OpenCV's bilinear resize, and autograd itself for the
split of the GAN step's gradients. The conformance run over every registered
method (tests/test_conformance.py) covers forward, backward, odd sizes and
batches.
"""

from __future__ import annotations

import copy
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mattezoo
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo.testing import sample_inputs
from mattezoo_methods.alphagan import decoder as decoder_module
from mattezoo_methods.alphagan.discriminator import PatchDiscriminator
from mattezoo_methods.alphagan.inference import UNKNOWN_CHANNEL, encode
from mattezoo_methods.alphagan.model import AlphaGAN, build_alphagan
from mattezoo_methods.alphagan.recipe import ALPHAGAN_WEIGHTS, alphagan_losses, alphagan_recipe

from adam_steps import adam_steps
from disc_batches import disc_batch

torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def model() -> AlphaGAN:
    torch.manual_seed(0)
    return build_alphagan().eval()


def random_trimap(shape, seed: int) -> torch.Tensor:
    return torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(seed)).float() / 2


def synthetic_batch(size: int = 32, batch: int = 2) -> dict[str, torch.Tensor]:
    return disc_batch(size, batch, ramp=3)


# --- structure ---------------------------------------------------------------------


def conv(cin, cout, k, bias=False):
    return cin * cout * k * k + (cout if bias else 0)


def bn(c):
    return 2 * c


def test_parameter_counts_are_the_layer_by_layer_sums(model):
    # ResNet-50 (torchvision: 25,557,032) without its 1000-way fc, plus the trimap's input channel of conv1.
    encoder = 25_557_032 - (2048 * 1000 + 1000) + 64 * 7 * 7
    aspp = (conv(2048, 256, 1) + bn(256) + 3 * (conv(2048, 256, 3) + bn(256))  # 1×1 and three atrous branches
            + conv(2048, 256, 1) + bn(256)  # image pooling
            + conv(5 * 256, 256, 1) + bn(256))  # projection
    decoder = (conv(256, 64, 1) + bn(64)  # skip from layer1
               + conv(320, 256, 3) + bn(256) + conv(256, 128, 3) + bn(128) + conv(128, 64, 3) + bn(64)
               + conv(64, 32, 1) + bn(32)  # skip from the stem
               + conv(96, 64, 3) + bn(64) + conv(64, 64, 3) + bn(64) + conv(64, 32, 3) + bn(32)  # incl. transposed conv
               + conv(35, 32, 3) + bn(32) + conv(32, 32, 3) + bn(32) + conv(32, 1, 3))
    patchgan = (conv(4, 64, 4, bias=True) + conv(64, 128, 4) + bn(128) + conv(128, 256, 4) + bn(256)
                + conv(256, 512, 4) + bn(512) + conv(512, 1, 4, bias=True))
    counts = {part: sum(p.numel() for p in getattr(model, part).parameters())
              for part in ("encoder", "aspp", "decoder", "discriminator")}
    assert counts == {"encoder": encoder, "aspp": aspp, "decoder": decoder, "discriminator": patchgan}
    assert encoder + aspp + decoder == 40_302_336 and patchgan == 2_766_657


def test_discriminator_has_the_pix2pix_layout():
    shapes = {k: tuple(v.shape) for k, v in PatchDiscriminator().state_dict().items() if not k.endswith("num_batches_tracked")}
    assert shapes == {
        "model.0.weight": (64, 4, 4, 4), "model.0.bias": (64,),
        "model.2.weight": (128, 64, 4, 4), **{f"model.3.{s}": (128,) for s in ("weight", "bias", "running_mean", "running_var")},
        "model.5.weight": (256, 128, 4, 4), **{f"model.6.{s}": (256,) for s in ("weight", "bias", "running_mean", "running_var")},
        "model.8.weight": (512, 256, 4, 4), **{f"model.9.{s}": (512,) for s in ("weight", "bias", "running_mean", "running_var")},
        "model.11.weight": (1, 512, 4, 4), "model.11.bias": (1,),
    }


@pytest.mark.parametrize("height, width", [(32, 32), (64, 64), (70, 70), (96, 64)])
def test_discriminator_gives_one_logit_per_patch(model, height, width):
    def side(s):  # three 4×4 stride-2 convs with padding 1, then two 4×4 stride-1 convs
        for _ in range(3):
            s = s // 2
        return s - 2

    trimap = random_trimap((2, 1, height, width), 1)
    logits = model.discriminate(torch.rand(2, 3, height, width), trimap)
    assert logits.shape == (2, 1, side(height), side(width))
    assert PatchDiscriminator.patch_grid(height, width) == (side(height), side(width))


def test_imagenet_resnet50_file_loads_strictly_with_a_zero_trimap_channel(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(reference, path)
    model = build_alphagan(discriminator=False, backbone_weights=str(path))
    ours = model.encoder.state_dict()
    assert set(ours) == set(reference) - {"fc.weight", "fc.bias"}
    assert torch.equal(ours["conv1.weight"][:, :3], reference["conv1.weight"])
    assert not ours["conv1.weight"][:, 3].any()
    assert all(torch.equal(ours[k], reference[k]) for k in ours if k != "conv1.weight")

    wrong = {("layer5.0.conv1.weight" if k == "layer4.2.conv3.weight" else k): v for k, v in reference.items()}
    torch.save(wrong, tmp_path / "renamed.pth")
    with pytest.raises(CheckpointError, match="1 missing keys: layer4.2.conv3.weight; 1 unexpected keys: layer5.0.conv1.weight"):
        model.load_backbone(tmp_path / "renamed.pth")
    bad_stem = dict(reference, **{"conv1.weight": torch.zeros(64, 5, 7, 7)})
    torch.save(bad_stem, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"\(64, 3, 7, 7\)"):
        model.load_backbone(tmp_path / "bad.pth")


def test_encoder_equals_torchvisions_dilated_resnet50(model):
    reference = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
    reference.conv1 = torch.nn.Conv2d(4, 64, 7, 2, 3, bias=False)
    reference.load_state_dict({**reference.state_dict(), **model.encoder.state_dict()}, strict=True)
    reference.eval()
    x = torch.randn(1, 4, 32, 40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model.encoder(x)
        stem = reference.relu(reference.bn1(reference.conv1(x)))
        pooled, indices = F.max_pool2d(stem, 3, 2, 1, return_indices=True)
        layer1 = reference.layer1(pooled)
        out = reference.layer4(reference.layer3(reference.layer2(layer1)))
    assert out.shape == (1, 2048, 4, 5)  # output stride 8
    torch.testing.assert_close(ours.stem, stem)
    assert torch.equal(ours.pool_indices, indices)
    torch.testing.assert_close(ours.layer1, layer1)
    torch.testing.assert_close(ours.out, out, rtol=1e-4, atol=1e-4)


def test_aspp_equals_torchvisions_deeplabv3_aspp(model):
    from torchvision.models.segmentation.deeplabv3 import ASPP

    reference = ASPP(2048, [6, 12, 18], 256)
    reference.load_state_dict(model.aspp.state_dict(), strict=True)  # same names: convs.0..4, project
    reference.eval()
    x = torch.randn(2, 2048, 5, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(model.aspp(x), reference(x))


def test_decoder_unpools_with_the_first_poolings_indices(model, monkeypatch):
    calls = []

    def recording_unpool(x, indices, size):
        out = original(x, indices, size)
        calls.append((x, indices, tuple(size), out))
        return out

    original = decoder_module.max_unpool2d
    monkeypatch.setattr(decoder_module, "max_unpool2d", recording_unpool)
    image, trimap = torch.rand(1, 3, 32, 48), random_trimap((1, 1, 32, 48), 5)
    with torch.no_grad():
        model(image, trimap)
        stem = model.encoder.relu(model.encoder.bn1(model.encoder.conv1(encode(image, trimap))))
    (x, indices, size, out), = calls
    _, expected = F.max_pool2d(stem, 3, 2, 1, return_indices=True)
    assert size == (16, 24) and x.shape == (1, 64, 8, 12)
    assert torch.equal(indices, expected)
    assert torch.equal(out, F.max_unpool2d(x, indices, 3, 2, 1, output_size=size))
    assert int((out != 0).sum()) <= x.numel()  # a sparse map: only the positions the pooling picked


def test_input_encoding_is_imagenet_rgb_and_the_8bit_trimap_over_255():
    image = torch.tensor([0.485, 0.456 + 0.224, 0.406 - 0.225]).view(1, 3, 1, 1).expand(1, 3, 1, 3)
    trimap = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    x = encode(image, trimap)
    torch.testing.assert_close(x[0, :3, 0, 0], torch.tensor([0.0, 1.0, -1.0]))
    assert x[0, 3, 0].tolist() == pytest.approx([0.0, UNKNOWN_CHANNEL, 1.0]) and UNKNOWN_CHANNEL == 128 / 255


# --- inference ---------------------------------------------------------------------


def test_pad_strategy_runs_the_reflect_padded_image_and_pastes_the_known_pixels(model):
    image, trimap = torch.rand(1, 3, 20, 45, generator=torch.Generator().manual_seed(6)), random_trimap((1, 1, 20, 45), 6)
    alpha = model.infer(image, trimap, strategy="pad")
    with torch.no_grad():  # reflect to 32×64 (20 + 12 rows: 12 < 20), crop back
        raw = model._generate(F.pad(image, (0, 19, 0, 12), mode="reflect"), F.pad(trimap, (0, 19, 0, 12), mode="reflect"))
    expected = torch.where(trimap == 0.5, raw[..., :20, :45], trimap)
    assert torch.equal(alpha, expected)
    assert torch.equal(alpha[trimap == 1], torch.ones_like(alpha[trimap == 1]))
    assert torch.equal(alpha[trimap == 0], torch.zeros_like(alpha[trimap == 0]))


def test_resize_strategy_is_the_reimplementations_bilinear_round_trip(model):
    image, trimap = torch.rand(1, 3, 50, 70, generator=torch.Generator().manual_seed(7)), random_trimap((1, 1, 50, 70), 7)
    alpha = model.infer(image, trimap, strategy="resize")

    def cv_resize(t, height, width):  # OpenCV's INTER_LINEAR, as the re-implementation's tester
        return torch.from_numpy(cv2.resize(t[0].permute(1, 2, 0).numpy(), (width, height), interpolation=cv2.INTER_LINEAR)).reshape(height, width, -1).permute(2, 0, 1)[None]

    small_image, small_trimap = cv_resize(image, 32, 64), cv_resize(trimap, 32, 64)  # 50×70 rounds down to 32×64
    with torch.no_grad():
        raw = model._generate(small_image, small_trimap)
    small = torch.where(small_trimap == 1, 1.0, torch.where(small_trimap == 0, 0.0, raw))
    expected = cv_resize(small, 50, 70).clamp(0, 1)
    expected = torch.where(trimap == 0.5, expected, trimap)
    torch.testing.assert_close(alpha, expected, atol=2e-3, rtol=0)


def test_max_side_refuses_pad_and_caps_resize(model, monkeypatch):
    image, trimap = torch.rand(1, 3, 40, 72), random_trimap((1, 1, 40, 72), 8)
    with pytest.raises(InputError, match="max_side=64.*strategy='resize'"):
        model.infer(image, trimap, strategy="pad", max_side=64)
    sizes = []
    generate = model._generate
    monkeypatch.setattr(model, "_generate", lambda x, t: sizes.append(tuple(x.shape[-2:])) or generate(x, t))
    assert model.infer(image, trimap, strategy="resize", max_side=64).shape == (1, 1, 40, 72)
    assert sizes == [(32, 64)]


def test_predict_runs_any_size_and_honours_the_trimap():
    method = mattezoo.create_method("alphagan", discriminator=False)
    image, trimap, _ = sample_inputs(21, 30)
    alpha = mattezoo.predict(method, image, trimap)
    assert alpha.shape == (21, 30) and np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)


@pytest.mark.parametrize("image, trimap, message", [
    (torch.rand(1, 1, 32, 32), torch.zeros(1, 1, 32, 32), r"\[B,3,H,W\]"),
    (torch.full((1, 3, 32, 32), float("nan")), torch.zeros(1, 1, 32, 32), "NaN"),
    (torch.rand(1, 3, 32, 32), None, "needs a trimap"),
    (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 30), "does not match the image"),
    (torch.rand(1, 3, 32, 32), torch.zeros(1, 2, 32, 32), r"\[B,1,H,W\]"),
    (torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 0.25), "valid values: 0 .*0.5 .*1"),
    (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32, dtype=torch.uint8), "float tensor"),
    (torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), float("nan")), "NaN"),
])
def test_infer_refuses_bad_input(model, image, trimap, message):
    with pytest.raises(InputError, match=message):
        model.infer(image, trimap)


def test_forward_needs_multiples_of_8_and_the_generator_alone_cannot_discriminate():
    model = build_alphagan(discriminator=False)
    with pytest.raises(InputError, match="multiples of 8"):
        model(torch.rand(1, 3, 36, 32), torch.zeros(1, 1, 36, 32))
    with pytest.raises(InvalidOptionError, match="discriminator=True"):
        model.discriminate(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("options, message", [
    ({"strategy": "tile"}, "valid: pad, resize"),
    ({"max_side": 16}, "max_side must be an int >= 32"),
    ({"discriminator": "yes"}, "True or False"),
    ({"discriminator_layers": 0}, "from 1 to 5"),
])
def test_bad_options_are_refused_with_the_choices(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        build_alphagan(**options)


# --- weights -------------------------------------------------------------------------


def test_generator_weights_exclude_the_discriminator_and_load_strictly(model, tmp_path):
    state = model.generator_state_dict()
    assert state and not any(k.startswith("discriminator.") for k in state)
    torch.save(state, tmp_path / "generator.pth")
    generator = mattezoo.create_method("alphagan", discriminator=False, pretrained=str(tmp_path / "generator.pth"))
    assert generator.discriminator is None
    assert all(torch.equal(v, state[k]) for k, v in generator.state_dict().items())
    with pytest.raises(CheckpointError, match="missing keys: discriminator"):
        mattezoo.create_method("alphagan", pretrained=str(tmp_path / "generator.pth"))


# --- training --------------------------------------------------------------------------


def test_paper_rows_of_p3m_table_2():
    spec = mattezoo.get_method("alphagan")
    rows = {r.protocol: dict(r.metrics) for r in spec.paper(source="P3M Table 2", test_set="P3M-500-P")}
    assert rows == {
        "B:B": {"SAD": 5.2669, "MSE": 0.0112, "MAD": 0.0373}, "B:N": {"SAD": 5.2367, "MSE": 0.0112, "MAD": 0.037},
        "N:B": {"SAD": 5.7060, "MSE": 0.0120, "MAD": 0.0412}, "N:N": {"SAD": 5.6696, "MSE": 0.0119, "MAD": 0.0408},
    }
    assert spec.paper(source="P3M Table 4") == [] and spec.family == "trimap-based"


def test_recipe_settings_and_refusals():
    recipe = alphagan_recipe()
    assert recipe.lr == 2e-4 and [s.name for s in recipe.stages] == ["adversarial"]
    assert set(recipe.needs) == {"image", "alpha", "trimap", "fg", "bg"}
    with pytest.raises(InvalidOptionError, match="unknown AlphaGAN loss weight"):
        alphagan_recipe({"adversarail": 1.0})
    with pytest.raises(InvalidOptionError, match="valid: vanilla, lsgan"):
        alphagan_recipe(gan_mode="wgan")


def test_losses_equal_their_formulas(model):
    batch = synthetic_batch()
    with torch.no_grad():  # eval mode: the shared model's BatchNorm statistics stay as they are
        parts = alphagan_losses(model, batch)
        raw = model._generate(batch["image"], batch["trimap"])
        fake = raw * batch["fg"] + (1 - raw) * batch["bg"]
        fake = torch.where(batch["trimap"] == 0.5, fake, batch["image"])  # known pixels: the trimap's alpha = gt here
        real = batch["alpha"] * batch["fg"] + (1 - batch["alpha"]) * batch["bg"]
        d_fake = model.discriminator(encode(fake, batch["trimap"]))
        d_real = model.discriminator(encode(real, batch["trimap"]))
    region = batch["trimap"] == 0.5
    d = (raw - batch["alpha"])[region]
    assert float(parts["alpha"]) == pytest.approx(float(torch.sqrt(d * d + 1e-12).sum() / (region.sum() + 1)), rel=1e-5)
    comp = raw * batch["fg"] + (1 - raw) * batch["bg"] - batch["image"]
    expected = torch.sqrt(comp[region.expand_as(comp)] ** 2 + 1e-12).sum() / (region.sum() + 1) / 3
    assert float(parts["composition"]) == pytest.approx(float(expected), rel=1e-5)

    def bce(logits, label):  # -mean log sigmoid(±logit), written out
        return float(-F.logsigmoid(logits if label else -logits).mean())

    assert float(parts["adversarial"]) == pytest.approx(bce(d_fake, True), rel=1e-4)
    assert float(parts["discriminator"]) == pytest.approx(0.5 * (bce(d_real, True) + bce(d_fake, False)), rel=1e-4)
    total = sum(ALPHAGAN_WEIGHTS[k] * parts[k] for k in ("alpha", "composition", "adversarial", "discriminator"))
    assert float(parts["loss"]) == pytest.approx(float(total), rel=1e-6)
    with torch.no_grad():
        lsgan = alphagan_losses(model, batch, gan_mode="lsgan")
    assert float(lsgan["adversarial"]) == pytest.approx(float(((d_fake - 1) ** 2).mean()), rel=1e-4)
    assert float(lsgan["discriminator"]) == pytest.approx(float(0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()), rel=1e-4)


def test_one_gan_step_trains_each_network_on_its_own_loss_and_in_the_right_direction():
    torch.manual_seed(5)
    model = build_alphagan().train()
    batch = synthetic_batch()
    gen_params = [p for n, p in model.named_parameters() if not n.startswith("discriminator.")]
    disc_params = list(model.discriminator.parameters())
    weights = {"alpha": 0.0, "composition": 0.0}  # the generator moves by the adversarial term alone
    parts = alphagan_losses(model, batch, weights)
    total = torch.autograd.grad(parts["loss"], gen_params + disc_params, retain_graph=True, allow_unused=True)
    only_adv = torch.autograd.grad(parts["adversarial"], gen_params, retain_graph=True, allow_unused=True)
    only_d = torch.autograd.grad(parts["discriminator"], disc_params, retain_graph=True)
    # Each network's gradient of the summed loss is exactly the gradient of its own loss.
    for got, want in zip(total[:len(gen_params)], only_adv):
        assert (got is None and want is None) or torch.equal(got, want)
    for got, want in zip(total[len(gen_params):], only_d):
        assert torch.equal(got, want)
    assert any(g is not None and g.abs().sum() > 0 for g in only_adv)

    # One step of the engine's Adam on the summed loss.
    with torch.no_grad():
        fake_before = model(batch["image"], batch["trimap"])
    old_disc = copy.deepcopy(model.discriminator)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    optimiser.zero_grad()
    alphagan_losses(model, batch, weights)["loss"].backward()
    optimiser.step()

    def composite(alpha):
        return alpha * batch["fg"] + (1 - alpha) * batch["bg"]

    def d_loss(disc, fake_alpha):
        real = disc(encode(composite(batch["alpha"]), batch["trimap"]))
        fake = disc(encode(composite(fake_alpha), batch["trimap"]))
        return float(0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))))

    def adv_loss(disc, fake_alpha):
        fake = disc(encode(composite(fake_alpha), batch["trimap"]))
        return float(F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)))

    with torch.no_grad():
        fake_after = model(batch["image"], batch["trimap"])
        # The discriminator got better at telling the pre-step fakes from the real composites ...
        assert d_loss(model.discriminator, fake_before) < d_loss(old_disc, fake_before)
        # ... and the generator's new fakes fool the pre-step discriminator more.
        assert adv_loss(old_disc, fake_after) < adv_loss(old_disc, fake_before)


def test_matting_losses_decrease_over_a_few_steps():
    torch.manual_seed(0)
    model = build_alphagan().train()
    recipe = alphagan_recipe()
    batch = synthetic_batch()
    history = adam_steps(recipe.stages[0].loss, model, batch, 4, lr=1e-3)  # the quick PPT bench's rate
    matting = [float(h["alpha"] + h["composition"]) for h in history]
    assert all(math.isfinite(v) for v in matting)
    assert matting[-1] < 0.8 * matting[0], matting


def test_the_engines_optimiser_and_checkpoints_cover_the_discriminator(model):
    # The engine's Adam takes model.parameters() and its checkpoint model.state_dict(): with the discriminator
    # a submodule, both hold it, so a resumed run restores its weights, BatchNorm statistics and Adam moments.
    params = {id(p) for p in model.parameters()}
    assert all(id(p) in params for p in model.discriminator.parameters())
    state = model.state_dict()
    assert {f"discriminator.{k}" for k in model.discriminator.state_dict()} <= set(state)
    assert alphagan_recipe().stages[0].trainable is None  # one stage trains every parameter
