"""LF (Late Fusion CNN): structure, fusion, inference, implied trimap, recipe, registration.

No official PyTorch code or checkpoint exists, so the structure is tested
against independent references: torchvision's DenseNet-201 (keys, shapes,
strict loading of its legacy-spelled file, identical features), a parameter
count derived by hand, and the fusion formula re-stated.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from mattezoo import get_method
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo_methods.lf import model as lf_model
from mattezoo_methods.lf.model import LateFusionMatting, build_lf, implied_trimap, late_fusion
from mattezoo_methods.lf.recipe import LF_WEIGHTS, gradient_loss, lf_recipe

from adam_steps import adam_steps

torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def model() -> LateFusionMatting:
    torch.manual_seed(0)
    m = build_lf().eval()
    # Non-trivial BatchNorm statistics, so eval-mode paths differ from identity normalisation.
    g = torch.Generator().manual_seed(1)
    for module in m.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1, generator=g)
            module.running_var.uniform_(0.5, 1.5, generator=g)
    return m


def _image(b=1, h=64, w=64, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _legacy(key: str) -> str:
    # torchvision's released densenet201-c1103571.pth spells denselayerN.norm1 as denselayerN.norm.1
    return re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", key)


def test_encoder_is_torchvision_densenet201_and_loads_its_legacy_file_strictly(tmp_path):
    torch.manual_seed(3)
    reference = torchvision.models.densenet201().eval()
    ref_state = reference.state_dict()
    m = build_lf().eval()
    own = m.encoder.state_dict()
    assert {k: tuple(v.shape) for k, v in own.items()} == {k: tuple(v.shape) for k, v in ref_state.items()}
    # As torchvision's file: legacy spelling, and no BatchNorm batch counters (saved before they existed).
    legacy = {_legacy(k): v for k, v in ref_state.items() if not k.endswith("num_batches_tracked")}
    # 98 dense layers, each with norm1/norm2 (4 tensors each) and conv1/conv2 (1 each) respelled.
    assert sum(k != _legacy(k) for k in ref_state if not k.endswith("num_batches_tracked")) == 98 * (2 * 4 + 2)
    path = tmp_path / "densenet201-legacy.pth"
    torch.save(legacy, path)
    m.load_backbone(path)
    for k, v in m.encoder.state_dict().items():
        assert torch.equal(v, ref_state[k]), k
    x = _image(1, 64, 64, seed=5)
    skips = m.encoder(x)
    with torch.no_grad():
        expected_s32 = F.relu(reference.features(x))
        expected_s4 = reference.features[:5](x)  # conv0, norm0, relu0, pool0, denseblock1
    assert torch.allclose(skips.s32, expected_s32, atol=1e-5)
    assert torch.allclose(skips.s4, expected_s4, atol=1e-5)
    assert [tuple(s.shape[1:]) for s in skips] == [(64, 32, 32), (256, 16, 16), (512, 8, 8), (1792, 4, 4), (1920, 2, 2)]


def test_backbone_file_that_does_not_fit_is_refused(tmp_path):
    m = build_lf()
    state = {k: v for k, v in m.encoder.state_dict().items() if not k.startswith("features.norm5")}
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="missing keys"):
        m.load_backbone(path)


def _conv(cin, cout, k, bias):
    return cin * cout * k * k + (cout if bias else 0)


def test_parameter_count_derived_by_hand(model):
    bn = lambda c: 2 * c  # noqa: E731  (weight + bias; running stats are buffers)
    cbr = lambda cin, cout, k=3: _conv(cin, cout, k, False) + bn(cout)  # noqa: E731
    decoder = cbr(1920, 256, 1)
    for cin, skip, cout in ((256, 1792, 256), (256, 512, 128), (128, 256, 64), (64, 64, 32)):
        decoder += cbr(skip, cout, 1) + cbr(cin + cout, cout) + cbr(cout, cout)
    decoder += cbr(32, 32) + _conv(32, 1, 3, True)
    fusion = cbr(69, 64) + cbr(64, 64) + cbr(64, 32) + cbr(32, 16) + _conv(16, 1, 3, True)
    encoder = sum(p.numel() for p in torchvision.models.densenet201().parameters())
    assert encoder == 20_013_928
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    assert count(model.fg_decoder) == count(model.bg_decoder) == decoder
    assert count(model.fusion) == fusion
    assert count(model) == encoder + 2 * decoder + fusion


def test_fusion_formula_and_output_shapes(model):
    x = _image(2, 64, 96, seed=1)
    with torch.no_grad():
        out = model.forward_intermediates(x)
        skips = model.encoder((x - model.mean) / model.std)
        fg_logits, fg_features = model.fg_decoder(skips, (64, 96))
    for t in (out.fg, out.bg, out.beta, out.alpha, out.fg_logits, out.bg_logits):
        assert t.shape == (2, 1, 64, 96)
    assert fg_features.shape == (2, lf_model.HEAD_WIDTH, 64, 96)
    assert torch.allclose(fg_logits, out.fg_logits, atol=1e-6)
    assert torch.allclose(out.fg, torch.sigmoid(out.fg_logits)) and torch.allclose(out.bg, torch.sigmoid(out.bg_logits))
    # alpha = beta F + (1 - beta)(1 - B), expanded: 1 - B - beta (1 - F - B)
    restated = 1.0 - out.bg - out.beta * (1.0 - out.fg - out.bg)
    assert torch.allclose(out.alpha, restated, atol=1e-6)
    assert (out.alpha >= 0).all() and (out.alpha <= 1).all()
    beta, f, b = torch.tensor([0.0, 1.0, 0.25]), torch.tensor([0.9, 0.9, 0.8]), torch.tensor([0.3, 0.3, 0.4])
    assert torch.allclose(late_fusion(beta, f, b), torch.tensor([0.7, 0.9, 0.25 * 0.8 + 0.75 * 0.6]))


def test_infer_any_size_pads_and_crops(model):
    x = _image(1, 45, 70, seed=2)
    alpha = model.infer(x)
    padded = F.pad(x, (0, 26, 0, 19), mode="reflect")
    with torch.no_grad():
        expected = model(padded)[..., :45, :70]
    assert alpha.shape == (1, 1, 45, 70)
    assert torch.allclose(alpha, expected, atol=1e-6)


def test_infer_max_side_shrinks_then_resizes_back(model):
    x = _image(1, 40, 80, seed=4)
    alpha = model.infer_details(x, max_side=64).alpha
    small = F.interpolate(x, size=(32, 64), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    with torch.no_grad():
        expected = F.interpolate(model(small), size=(40, 80), mode="bilinear", align_corners=False).clamp(0, 1)
    assert alpha.shape == (1, 1, 40, 80)
    assert torch.allclose(alpha, expected, atol=1e-6)


def test_batch_equals_single(model):
    x = _image(2, 33, 40, seed=6)
    both = model.infer(x)
    for i in range(2):
        assert torch.allclose(both[i : i + 1], model.infer(x[i : i + 1]), atol=1e-5)


def test_implied_trimap_and_its_alpha_bound():
    fg = torch.tensor([0.995, 0.995, 0.004, 0.5, 0.995, 0.004]).view(1, 1, 1, 6)
    bg = torch.tensor([0.006, 0.5, 0.999, 0.5, 0.995, 0.004]).view(1, 1, 1, 6)
    trimap = implied_trimap(fg, bg, eps=0.01)
    assert trimap.flatten().tolist() == [1.0, 0.5, 0.0, 0.5, 0.5, 0.5]
    # Wherever the trimap is known, the fused alpha is within eps of it for any beta.
    g = torch.Generator().manual_seed(0)
    f, b, beta = (torch.rand(1, 1, 50, 50, generator=g) for _ in range(3))
    f, b = f ** 0.02, b ** 50  # push many pixels into the sure foreground
    t = implied_trimap(f, b, 0.05)
    alpha = late_fusion(beta, f, b)
    known = t != 0.5
    assert known.any()
    assert ((alpha - t).abs()[known] <= 0.05 + 1e-6).all()


def test_infer_trimap_levels(model):
    trimap = model.infer_trimap(_image(1, 40, 40))
    assert trimap.shape == (1, 1, 40, 40)
    assert set(trimap.unique().tolist()) <= {0.0, 0.5, 1.0}


@pytest.mark.parametrize("bad, message", [
    (torch.rand(1, 1, 32, 32), "RGB"),
    (torch.full((1, 3, 32, 32), float("nan")), "NaN|finite"),
    (torch.randint(0, 255, (1, 3, 32, 32)), "float"),
    (torch.rand(3, 32, 32), "RGB|B,3,H,W"),
])
def test_bad_images_are_refused(model, bad, message):
    with pytest.raises(InputError, match=message):
        model.infer(bad)


def test_bad_calls_and_options_are_refused(model):
    with pytest.raises(InputError, match="trimap-free"):
        model.infer(_image(1, 32, 32), torch.zeros(1, 1, 32, 32))
    with pytest.raises(InputError, match="multiples of 32"):
        model(_image(1, 40, 32))
    with pytest.raises(InvalidOptionError, match="max_side"):
        build_lf(max_side=16)
    with pytest.raises(InvalidOptionError, match="max_side"):
        model.infer_details(_image(1, 32, 32), max_side=True)
    with pytest.raises(InvalidOptionError, match="trimap_eps"):
        build_lf(trimap_eps=0.7)
    with pytest.raises(InvalidOptionError, match="valid"):
        lf_recipe(loss_weights={"nope": 1.0})


def test_gradient_loss_against_numpy():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(1, 1, 6, 7, generator=g), torch.rand(1, 1, 6, 7, generator=g)
    region = (torch.rand(1, 1, 6, 7, generator=g) > 0.3).float()
    p, t, r = pred[0, 0].numpy(), target[0, 0].numpy(), region[0, 0].numpy()
    total, count = 0.0, 0.0
    for i in range(6):
        for j in range(7):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < 6 and j + dj < 7 and r[i, j] and r[i + di, j + dj]:
                    total += abs((p[i + di, j + dj] - p[i, j]) - (t[i + di, j + dj] - t[i, j]))
                    count += 1
    assert float(gradient_loss(pred, target, region)) == pytest.approx(total / (count + 1), rel=1e-5)


def _batch(size=32, n=2):
    g = torch.Generator().manual_seed(7)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    alpha = ((0.6 - (xx ** 2 + yy ** 2).sqrt()) * 6).clamp(0, 1).expand(n, 1, size, size).contiguous()
    fg, bg = torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, size, size), torch.rand(n, 3, size, size, generator=g)
    image = alpha * fg + (1 - alpha) * bg
    trimap = torch.where(alpha >= 1, 1.0, torch.where(alpha <= 0, 0.0, 0.5))
    trimap = torch.where(F.max_pool2d((trimap == 0.5).float(), 5, 1, 2) > 0, 0.5, trimap)
    return {"image": image, "alpha": alpha, "trimap": trimap}


def test_recipe_stages_train_what_they_say_and_the_loss_decreases():
    torch.manual_seed(0)
    m = build_lf().train()
    recipe = lf_recipe()
    assert [s.name for s in recipe.stages] == ["segmentation", "fusion", "end-to-end"]
    seg, fusion, joint = recipe.stages
    fusion_ids = {id(p) for p in m.fusion.parameters()}
    assert {id(p) for p in fusion.trainable(m)} == fusion_ids
    assert fusion_ids.isdisjoint({id(p) for p in seg.trainable(m)})
    assert len(list(seg.trainable(m))) + len(fusion_ids) == len(list(m.parameters()))
    assert joint.trainable is None
    batch = _batch()
    # Fusion stage: only the fusion net trains, and the frozen branches' BatchNorm statistics stay put.
    for p in m.parameters():
        p.requires_grad_(id(p) in fusion_ids)
    before = m.encoder.features.norm0.running_mean.clone()
    parts = fusion.loss(m, batch)
    assert torch.equal(before, m.encoder.features.norm0.running_mean)
    assert float(parts["loss"].detach()) == pytest.approx(float(parts["fusion"].detach()))
    # End to end: every parameter trains; the loss falls over a few steps.
    for p in m.parameters():
        p.requires_grad_(True)
    history = adam_steps(joint.loss, m, batch, 6, lr=1e-3)
    losses = [float(h["loss"]) for h in history]
    assert m.encoder.training  # the joint stage restored train mode
    parts = {k: float(v) for k, v in history[-1].items()}
    assert parts["loss"] == pytest.approx(LF_WEIGHTS["seg"] * parts["seg"] + parts["fusion"], rel=1e-5)
    assert losses[-1] < 0.9 * losses[0], losses


def test_registration_and_paper_rows():
    spec = get_method("lf")
    assert spec.family == "trimap-free" and spec.provides_trimap and spec.input_multiple == 32
    assert spec.recipe == "mattezoo_methods.lf.recipe:lf_recipe"
    table3 = {r.protocol: r.metrics["SAD"] for r in spec.paper(source="P3M Table 3")}
    assert table3 == {"B:B": 42.95, "B:N": 30.84, "N:B": 41.01, "N:N": 31.22}
    np_row = spec.paper(source="P3M Table 4", test_set="P3M-500-NP")[0].metrics
    assert (np_row["SAD-T"], np_row["GRAD"], np_row["CONN"]) == (14.53, 31.93, 19.50)
