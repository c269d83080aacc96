"""GFM-TT(ResNet-34): official key layout and size, outputs of the official network, fusion, test strategies, training.

Fixtures in ``data/`` were recorded once by running the official module
(JizhiziLi/GFM ``core/gfm.py``, ``GFM(backbone="r34", rosta="TT")``, with
torchvision's ``resnet34``) outside this repository:

* ``gfm_r34_tt_official_keys.json``: its ``state_dict()`` keys and shapes in
  order, and its parameter count;
* ``gfm_r34_tt_official_outputs.json``: its outputs (``glance_sigmoid``,
  ``focus_sigmoid``, ``fusion_sigmoid``) on a seeded 64×64 image, with the
  weights :func:`seeded_official_state` generates, on a 4-pixel grid, plus
  the means of the whole maps.

The conformance run over every registered method (tests/test_conformance.py)
covers forward, backward, odd sizes and batches.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import mattezoo
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo.hybrid import working_size
from mattezoo_methods.gfm.inference import collaborative_matting
from mattezoo_methods.gfm.model import GFM, build_gfm
from mattezoo_methods.gfm.recipe import GFM_WEIGHTS, gfm_losses, gfm_recipe

from strategy_checks import PassRecorder, skimage_reference
from adam_steps import adam_steps
from disc_batches import disc_batch
from seeded_weights import model_with_state, seeded_tensor as shared_seeded_tensor

DATA = Path(__file__).parent / "data"
GRID = (slice(1, None, 4), slice(1, None, 4))  # the pixels the output fixture holds


def official_layout() -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    doc = json.loads((DATA / "gfm_r34_tt_official_keys.json").read_text())
    return [(k, tuple(shape)) for k, shape in doc["keys"]], doc["parameter_count"]


def canonical(key: str) -> str:
    """The official model registers parts of its ResNet twice; map an alias key to its ``resnet.`` name."""
    head, _, rest = key.partition(".")
    if head == "encoder0":
        index, _, leaf = rest.partition(".")
        return f"resnet.{ {'0': 'conv1', '1': 'bn1'}[index]}.{leaf}"
    if head == "encoder1":  # encoder1 = (maxpool, layer1)
        return "resnet.layer1." + rest.partition(".")[2]
    if head in ("encoder2", "encoder3", "encoder4"):
        return f"resnet.layer{head[-1]}.{rest}"
    return key


# The stem sees 0..255 pixels; the heads get activations that grew through the
# residual stages: shrink them so the sigmoids work in their sensitive range.
HEAD_SHRINK = {"resnet.conv1.weight": 255.0, "decoder0_g.6.weight": 40.0, "decoder0_f.6.weight": 4.0}


def seeded_tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixture's weights for one (canonical) key, with the heads shrunk."""
    return shared_seeded_tensor(name, shape, kernel_gain=1.0 / HEAD_SHRINK.get(name, 1.0))

def seeded_official_state() -> dict[str, torch.Tensor]:
    """Seeded weights under every official key; alias keys share their tensor, as in a real save."""
    keys, _ = official_layout()
    tensors: dict[str, torch.Tensor] = {}
    for key, shape in keys:
        if canonical(key) not in tensors:
            tensors[canonical(key)] = seeded_tensor(canonical(key), shape)
    return {key: tensors[canonical(key)] for key, _ in keys}


def fixture_image() -> torch.Tensor:
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2022))


@pytest.fixture(scope="module")
def seeded_model() -> GFM:
    return model_with_state(build_gfm, seeded_official_state())


# --- architecture and the official outputs -----------------------------------------


def test_parameter_count_and_state_dict_layout_match_official():
    keys, count = official_layout()
    assert count == 55_286_316 and len(keys) == 688
    with torch.device("meta"):  # structure only
        model = build_gfm()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == keys
    assert sum(p.numel() for p in model.parameters()) == count


def test_outputs_equal_the_official_network_for_the_same_weights(seeded_model):
    doc = json.loads((DATA / "gfm_r34_tt_official_outputs.json").read_text())
    with torch.no_grad():
        out = seeded_model.forward_intermediates(fixture_image())
    glance = out.glance[0]
    torch.testing.assert_close(glance[(slice(None), *GRID)], torch.tensor(doc["glance_sigmoid"]), rtol=0, atol=2e-5)
    torch.testing.assert_close(out.focus[0, 0][GRID], torch.tensor(doc["focus_sigmoid"]), rtol=0, atol=2e-5)
    # Fused values can only differ where the glance classes are a near tie.
    top2 = glance.topk(2, dim=0).values
    clear = (top2[0] - top2[1])[GRID] > 1e-4
    torch.testing.assert_close(out.fused[0, 0][GRID][clear], torch.tensor(doc["fusion_sigmoid"])[clear], rtol=0, atol=2e-5)
    means = doc["means"]
    assert [float(glance[c].double().mean()) for c in range(3)] == pytest.approx(means["glance_sigmoid"], abs=1e-5)
    assert float(out.focus.double().mean()) == pytest.approx(means["focus_sigmoid"], abs=1e-5)
    assert float(out.fused.double().mean()) == pytest.approx(means["fusion_sigmoid"], abs=1e-4)


def test_network_sees_pixel_values_in_0_255(seeded_model):
    """The official network is fed raw 0..255 pixels: forward(image) is the trunk on image * 255."""
    image = fixture_image()[..., :32, :32]
    with torch.no_grad():
        out = seeded_model.forward_intermediates(image)
        glance, focus = seeded_model._heads(image * 255.0, ("glance_logits", "focus"))
    assert torch.equal(out.glance_logits, glance) and torch.equal(out.focus, focus)


def reference_collaborative_matting(glance_sigmoid: np.ndarray, focus: np.ndarray) -> np.ndarray:
    """The official TT rule restated pixel by pixel: argmax 1 -> focus, 2 -> 1, 0 -> 0."""
    out = np.zeros_like(focus)
    for n, y, x in np.ndindex(focus.shape[0], *focus.shape[2:]):
        cls = int(np.argmax(glance_sigmoid[n, :, y, x]))
        out[n, 0, y, x] = focus[n, 0, y, x] if cls == 1 else float(cls == 2)
    return out


def test_forward_returns_the_collaborative_matting_of_both_heads(seeded_model):
    image = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = seeded_model.forward_intermediates(image)
        alpha = seeded_model(image)
    assert out.glance_logits.shape == (2, 3, 64, 96) and out.focus.shape == out.fused.shape == (2, 1, 64, 96)
    assert torch.equal(alpha, out.fused)
    expected = reference_collaborative_matting(out.glance.numpy(), out.focus.numpy())
    assert np.array_equal(out.fused.numpy(), expected)
    assert set(out.trimap.unique().tolist()) <= {0.0, 0.5, 1.0}
    assert 0.0 <= float(alpha.min()) and float(alpha.max()) <= 1.0


def test_collaborative_matting_takes_argmax_of_the_sigmoids():
    # Channels 1 and 2 both saturate the float32 sigmoid to 1.0: the official
    # argmax (over sigmoids) picks the first, channel 1, not the larger logit.
    logits = torch.tensor([[0.0, 30.0, 40.0], [5.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 2.0, 1.0]]).T.reshape(1, 3, 1, 4)
    focus = torch.tensor([0.3, 0.6, 0.2, 0.9]).reshape(1, 1, 1, 4)
    assert collaborative_matting(logits, focus).flatten().tolist() == pytest.approx([0.3, 0.0, 1.0, 0.9])


def test_fused_inference_pass_equals_the_plain_pass(seeded_model):
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        seeded_model.fused_inference = False
        plain = seeded_model.inference_maps(image)
        seeded_model.fused_inference = True
        fused = seeded_model.inference_maps(image)
        glance_only = seeded_model.inference_maps(image, focus=False)
    assert glance_only.focus is None
    torch.testing.assert_close(fused.glance_logits, plain.glance_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.focus, plain.focus, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(glance_only.glance_logits, fused.glance_logits, rtol=0, atol=1e-6)


# --- checkpoints -----------------------------------------------------------------------


def test_official_checkpoint_loads_strictly_by_path_and_by_tag(tmp_path, monkeypatch):
    state = seeded_official_state()
    path = tmp_path / "gfm_r34_tt.pth"
    torch.save(state, path)  # the official train.py saves the bare state dict
    by_path = mattezoo.create_method("gfm", pretrained=str(path))
    assert all(torch.equal(by_path.state_dict()[k], v) for k, v in state.items())
    assert not by_path.training
    monkeypatch.setenv("MATTEZOO_WEIGHTS", str(tmp_path))
    by_tag = mattezoo.create_method("gfm.am2k")
    assert torch.equal(by_tag.decoder0_f[6].weight, state["decoder0_f.6.weight"])
    assert by_tag.encoder2 is by_tag.resnet.layer2  # the aliases stay the same modules


def test_checkpoint_that_does_not_fit_lists_missing_and_unexpected_keys(tmp_path):
    state = seeded_official_state()
    del state["psp1.0.weight"]
    state["decoder5_g.0.weight"] = torch.zeros(1)  # the r34_2b variant's block
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing keys: psp1\.0\.weight.*unexpected keys: decoder5_g\.0\.weight"):
        mattezoo.create_method("gfm", pretrained=str(path))


def test_torchvision_imagenet_file_loads_into_the_encoder(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        reference = torchvision.models.resnet34(weights=None)
    backbone = {k: seeded_tensor("resnet." + k, tuple(v.shape)) for k, v in reference.state_dict().items()}
    path = tmp_path / "resnet34-b627a593.pth"
    torch.save(backbone, path)
    model = mattezoo.create_method("gfm", backbone_weights=str(path))
    assert torch.equal(model.resnet.layer3[0].downsample[0].weight, backbone["layer3.0.downsample.0.weight"])
    assert torch.equal(model.encoder0[0].weight, backbone["conv1.weight"])  # the official alias follows
    torch.save({k: v for k, v in backbone.items() if not k.startswith("fc.")}, path)
    with pytest.raises(CheckpointError, match=r"missing keys: fc\.bias, fc\.weight"):
        mattezoo.create_method("gfm", backbone_weights=str(path))


# --- resampling and test strategies ----------------------------------------------------


@pytest.mark.parametrize(
    "height,width,scale,max_side,expected",
    [
        (1080, 1920, 1 / 3, 1600, (352, 640)),  # int(360) -> 352, int(640) -> 640
        (1080, 1920, 1 / 2, 1600, (512, 960)),
        (4000, 3000, 1 / 2, 1600, (1600, 1472)),  # each side capped on its own, as officially
        (70, 45, 1 / 3, 1600, (32, 32)),  # never below one 32-pixel cell
        (2000, 999, 1 / 2, 500, (480, 480)),  # max_side rounded down to a multiple of 32
    ],
)
def test_working_size_is_the_official_rule(height, width, scale, max_side, expected):
    assert working_size(height, width, scale, max_side) == expected


def official_hybrid(glance_logits: torch.Tensor, focus: torch.Tensor, size, known_rule: str):
    """The official HYBRID fusion in numpy/skimage per image (JizhiziLi/GFM core/test.py, util.py).

    The glance argmax becomes a uint8 trimap 0/128/255, resized with skimage
    (float64) times 255; ``"official"`` keeps a pixel as background or
    foreground where that equals 0 or 255 exactly, ``"solid"`` within 255e-6.
    Known pixels get 0/1, the rest the resized focus matte. Returns (alpha, trimap 0/0.5/1).
    """
    transform = pytest.importorskip("skimage.transform")
    alphas, trimaps = [], []
    for logits, local in zip(torch.sigmoid(glance_logits).numpy(), focus.float().numpy()):
        classes = np.argmax(logits, axis=0)
        trimap = np.where(classes == 1, 128, np.where(classes == 2, 255, 0)).astype(np.uint8)
        glance = transform.resize(trimap, size) * 255.0
        local = transform.resize(local[0], size)
        if known_rule == "official":
            fg, bg = glance == 255, glance == 0
        else:
            fg, bg = glance >= 255 * (1 - 1e-6), glance <= 255e-6
        alphas.append(np.where(fg | bg, fg * 1.0, local))
        trimaps.append(np.where(fg, 1.0, np.where(bg, 0.0, 0.5)))
    return torch.from_numpy(np.array(alphas))[:, None], torch.from_numpy(np.array(trimaps))[:, None]


@pytest.mark.parametrize("height,width,known_rule", [(100, 70, "official"), (130, 98, "official"), (100, 70, "solid")])
def test_hybrid_glances_at_a_third_and_focuses_at_half_scale(seeded_model, monkeypatch, height, width, known_rule):
    recorder = PassRecorder(seeded_model)
    monkeypatch.setattr(seeded_model, "inference_maps", recorder)
    image = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height))
    result = seeded_model.infer_details(image, strategy="hybrid", known_rule=known_rule)
    assert recorder.sizes == [working_size(height, width, 1 / 3, 1600), working_size(height, width, 1 / 2, 1600)]
    assert recorder.asked == [{"glance": True, "focus": False}, {"glance": False, "focus": True}]  # one head a pass
    for given, size in zip(recorder.inputs, recorder.sizes):
        torch.testing.assert_close(given, skimage_reference(image, size).float(), rtol=0, atol=1e-6)
    expected, trimap = official_hybrid(recorder.outputs[0].glance_logits, recorder.outputs[1].focus, (height, width), known_rule)
    assert torch.equal(result.trimap, trimap.float())  # the same pixels are known, exactly
    torch.testing.assert_close(result.alpha, expected.float(), rtol=0, atol=1e-5)
    assert result.alpha.shape == result.focus.shape == (2, 1, height, width)


def test_resize_is_one_half_scale_pass_resized_back(seeded_model, monkeypatch):
    recorder = PassRecorder(seeded_model)
    monkeypatch.setattr(seeded_model, "inference_maps", recorder)
    image = torch.rand(1, 3, 97, 70, generator=torch.Generator().manual_seed(3))
    alpha = seeded_model.infer_details(image, strategy="resize").alpha
    assert recorder.sizes == [working_size(97, 70, 1 / 2, 1600)] == [(32, 32)]
    maps = recorder.outputs[0]
    fused = reference_collaborative_matting(torch.sigmoid(maps.glance_logits).numpy(), maps.focus.numpy())
    torch.testing.assert_close(alpha, skimage_reference(torch.from_numpy(fused), (97, 70)).float(), rtol=0, atol=1e-5)


def test_max_side_caps_every_pass(seeded_model, monkeypatch):
    recorder = PassRecorder(seeded_model)
    monkeypatch.setattr(seeded_model, "inference_maps", recorder)
    seeded_model.infer_details(torch.rand(1, 3, 200, 500), strategy="hybrid", max_side=100)
    assert recorder.sizes == [(64, 96), (96, 96)]


def test_predict_runs_any_size_with_the_configured_strategy():
    net = mattezoo.create_method("gfm", strategy="resize", max_side=64)
    assert net.strategy == "resize" and net.max_side == 64
    image = (torch.rand(41, 57, 3) * 255).to(torch.uint8).numpy()
    assert mattezoo.predict(net, image).shape == (41, 57)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image,message",
    [
        (torch.rand(1, 1, 64, 64), r"RGB image tensor \[B,3,H,W\]"),
        (torch.rand(3, 64, 64), r"RGB image tensor \[B,3,H,W\]"),
        (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
        (torch.rand(1, 3, 64, 64) * 255, r"\[0,1\]"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "float image"),
        (torch.rand(1, 3, 0, 64), "empty"),
    ],
)
def test_infer_refuses_bad_images(seeded_model, image, message):
    with pytest.raises(InputError, match=message):
        seeded_model.infer(image)


def test_passes_refuse_sizes_that_are_not_multiples_of_32_and_trimaps(seeded_model):
    with pytest.raises(InputError, match="multiples of 32"):
        seeded_model(torch.rand(1, 3, 64, 50))
    with pytest.raises(InputError, match="multiples of 32"):
        seeded_model.inference_maps(torch.rand(1, 3, 40, 64))
    with pytest.raises(InvalidOptionError, match="at least one of"):
        seeded_model.inference_maps(torch.rand(1, 3, 32, 32), glance=False, focus=False)
    with pytest.raises(InputError, match="trimap-free"):
        seeded_model.infer(torch.rand(1, 3, 64, 64), torch.full((1, 1, 64, 64), 0.5))


@pytest.mark.parametrize(
    "options,message",
    [
        ({"strategy": "tiled"}, "valid strategies: hybrid, resize"),
        ({"max_side": 16}, "max_side must be an int >= 32"),
        ({"known_rule": "tolerant"}, "valid rules: official, solid"),
        ({"rosta": "FT"}, "no option 'rosta'"),
    ],
)
def test_bad_options_are_refused_with_the_choices(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        mattezoo.create_method("gfm", **options)


def test_infer_options_are_checked_per_call(seeded_model):
    with pytest.raises(InvalidOptionError, match="valid strategies"):
        seeded_model.infer_details(torch.rand(1, 3, 64, 64), strategy="tiles")


# --- registration -----------------------------------------------------------------------------


def test_paper_rows_of_p3m_tables_3_and_4():
    spec = mattezoo.get_method("gfm")
    table3 = {r.protocol: r.metrics for r in spec.paper(source="P3M Table 3")}
    assert set(table3) == {"B:B", "B:N", "N:B", "N:N"}
    assert dict(table3["N:N"]) == {"SAD": 10.73, "MSE": 0.0033, "MAD": 0.0063}
    private = spec.paper(source="P3M Table 4", test_set="P3M-500-P")[0].metrics
    normal = spec.paper(source="P3M Table 4", test_set="P3M-500-NP")[0].metrics
    assert private["SAD"] == table3["B:B"]["SAD"] == 13.20 and private["CONN"] == 17.75
    assert normal["SAD-T"] == 10.16 and len(normal) == 8
    assert spec.family == "trimap-free" and spec.weights["am2k"].file == "gfm_r34_tt.pth"


# --- training ----------------------------------------------------------------------------------


def official_gfm_loss(glance_sigmoid, focus, fused, image, alpha, trimap, fg, bg):
    """The official TT loss (core/train.py, core/evaluate.py) restated on the official 0..255 tensors."""
    image, fg, bg, alpha = image * 255.0, fg * 255.0, bg * 255.0, alpha * 255.0
    trimap = torch.where(trimap == 0.5, 128.0, trimap * 255.0)
    classes = torch.where(trimap == 255, 2, torch.where(trimap == 0, 0, 1))[:, 0]
    ce = torch.nn.CrossEntropyLoss()(glance_sigmoid, classes)
    grid = np.float32(np.mgrid[0:5, 0:5].T)
    kernel = np.sum(np.exp((grid - 2) ** 2 / -2.0) ** 2, axis=2)
    kernel = torch.from_numpy(kernel / kernel.sum())[None, None].float()

    def pyramid(x):
        levels = []
        for _ in range(5):
            smooth = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate"), kernel)
            levels.append(x - smooth)
            x = torch.nn.functional.avg_pool2d(smooth, 2)
        return levels + [x]

    def laplacian(pred, target):
        return sum(torch.nn.functional.l1_loss(a, b) for a, b in zip(pyramid(target), pyramid(pred)))

    weighted = (trimap == 128).float()
    d = (focus - alpha / 255.0) * weighted
    local = torch.sqrt(d**2 + 1e-12).sum() / (weighted.sum() + 1.0) + laplacian(focus * weighted, alpha / 255.0 * weighted)
    d = fused - alpha / 255.0
    fusion = torch.sqrt(d**2 + 1e-12).mean() + laplacian(fused, alpha / 255.0)
    comp = fused * fg + (1.0 - fused) * bg
    composition = (torch.sqrt((comp - image) ** 2 + 1e-12) / 255.0).sum() / alpha.numel()
    return 0.25 * ce + 0.25 * local + 0.25 * fusion + 0.25 * composition


def synthetic_batch(size: int = 64, batch: int = 2) -> dict[str, torch.Tensor]:
    return disc_batch(size, batch, ramp=6)


def test_losses_equal_the_official_formulas(seeded_model):
    batch = synthetic_batch()
    with torch.no_grad():
        out = seeded_model.forward_intermediates(batch["image"])
    ours = gfm_losses(out, batch)
    assert set(ours) == {"loss", *GFM_WEIGHTS}
    expected = official_gfm_loss(out.glance, out.focus, out.fused, batch["image"], batch["alpha"], batch["trimap"],
                                 batch["fg"], batch["bg"])
    assert float(ours["loss"]) == pytest.approx(float(expected), rel=1e-5, abs=1e-5)


def test_glance_cross_entropy_reads_the_sigmoids_unless_asked_for_logits(seeded_model):
    batch = synthetic_batch()
    with torch.no_grad():
        out = seeded_model.forward_intermediates(batch["image"])
    classes = torch.round(batch["trimap"][:, 0] * 2).long()
    official = gfm_losses(out, batch)["global"]
    on_logits = gfm_losses(out, batch, glance_ce="logits")["global"]
    assert float(official) == pytest.approx(float(torch.nn.functional.cross_entropy(out.glance, classes)), rel=1e-6)
    assert float(on_logits) == pytest.approx(float(torch.nn.functional.cross_entropy(out.glance_logits, classes)), rel=1e-6)


def test_recipe_refuses_unknown_options():
    assert gfm_recipe().lr == 1e-5
    with pytest.raises(InvalidOptionError, match="unknown GFM loss weight"):
        gfm_recipe({"lapalcian": 1.0})
    with pytest.raises(InvalidOptionError, match="valid: sigmoid, logits"):
        gfm_recipe(glance_ce="softmax")


def test_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    model = build_gfm().train()
    recipe = gfm_recipe()
    batch = synthetic_batch()
    losses = [float(h["loss"]) for h in adam_steps(recipe.stages[0].loss, model, batch, 4, lr=1e-4)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("strategy", ["hybrid", "resize"])
def test_images_smaller_than_one_pass_still_work(seeded_model, strategy):
    # Sides under 32 px: every pass is raised to 32 px and the trimap shrinks back (the official code cannot run these).
    image = torch.rand(1, 3, 20, 45, generator=torch.Generator().manual_seed(1))
    result = seeded_model.infer_details(image, strategy=strategy)
    assert result.alpha.shape == result.trimap.shape == (1, 1, 20, 45)
    assert torch.isfinite(result.alpha).all() and 0 <= float(result.alpha.min()) <= float(result.alpha.max()) <= 1
    assert set(result.trimap.unique().tolist()) <= {0.0, 0.5, 1.0}
