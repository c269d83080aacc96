"""IndexNet Matting: official key layout and size, outputs of the official network and demo, resizes, losses, training.

Fixtures in ``data/`` were recorded once by running the official code
(poppinace/indexnet_matting ``scripts/hlmobilenetv2.py``, ``hlmobilenetv2(
decoder="indexnet", ...)``, plain ``nn.BatchNorm2d``) outside this repository:

* ``indexnet_official_keys.json``: the released configuration's
  ``state_dict()`` keys and shapes in order and its parameter count, plus the
  key and parameter counts of the other configurations of :data:`VARIANTS`;
* ``indexnet_official_outputs.json``: for each configuration of
  :data:`VARIANTS`, the official module's raw output on the seeded input of
  :func:`fixture_inputs` (normalised and resized as ``demo.py`` does) with the
  weights :func:`seeded_official_state` generates, on a 4-pixel grid, plus its
  mean; for the released configuration also the matte of the whole
  ``demo.py`` procedure (before its uint8 cast) on the same grid.

The conformance run over every registered method (tests/test_conformance.py)
covers forward, backward, odd sizes and batches.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import mattezoo
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo_methods.indexnet import inference
from mattezoo_methods.indexnet.model import IndexNetMatting, build_indexnet
from mattezoo_methods.indexnet.recipe import (
    INDEXNET_LR, indexnet_losses, indexnet_recipe, official_parameter_groups,
)

from adam_steps import adam_steps
from disc_batches import disc_batch
from seeded_weights import key_generator, seeded_tensor as shared_seeded_tensor

DATA = Path(__file__).parent / "data"
GRID = (slice(1, None, 4), slice(1, None, 4))  # the pixels the output fixture holds
FIXTURE_SIZE = (50, 70)  # not a multiple of 32: the demo resizes it to 64×96 and back

RELEASED = dict(indexnet="depthwise", index_mode="m2o", use_nonlinear=True, use_context=True, apply_aspp=True,
                output_stride=32, conv_operator="std_conv", decoder_kernel_size=5)
VARIANTS = {
    "released": RELEASED,
    "holistic_os16": dict(indexnet="holistic", index_mode="o2o", use_nonlinear=True, use_context=False,
                          apply_aspp=False, output_stride=16, conv_operator="dep_sep_conv", decoder_kernel_size=3),
    "o2o_linear": dict(indexnet="depthwise", index_mode="o2o", use_nonlinear=False, use_context=True,
                       apply_aspp=True, output_stride=32, conv_operator="std_conv", decoder_kernel_size=5),
}


# --- seeded weights and inputs (the output fixture was made with exactly these) ---------------


def seeded_tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixture's weights; the last conv is positive, so the raw matte spreads over [0,1] instead of clipping at 0."""
    if name == "pred.1.weight":
        return 0.2 * torch.randn(shape, generator=key_generator(name)).abs()
    return shared_seeded_tensor(name, shape)

def seeded_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: seeded_tensor(k, tuple(v.shape)) for k, v in model.state_dict().items()}


def official_layout() -> dict:
    return json.loads((DATA / "indexnet_official_keys.json").read_text())


def seeded_official_state() -> dict[str, torch.Tensor]:
    """Seeded weights under every official key of the released configuration."""
    return {k: seeded_tensor(k, tuple(shape)) for k, shape in official_layout()["keys"]}


def fixture_inputs(height: int = FIXTURE_SIZE[0], width: int = FIXTURE_SIZE[1]) -> tuple[np.ndarray, np.ndarray]:
    """A seeded uint8 RGB image ``H×W×3`` and a uint8 trimap (disc: 255 inside, a 128 ring, 0 outside)."""
    gen = torch.Generator().manual_seed(2019)
    image = torch.randint(0, 256, (height, width, 3), generator=gen, dtype=torch.uint8).numpy()
    yy, xx = np.mgrid[0:height, 0:width]
    dist = np.hypot(yy - height * 0.45, xx - width * 0.55)
    trimap = np.where(dist < 0.2 * min(height, width), 255, np.where(dist < 0.4 * min(height, width), 128, 0))
    return image, trimap.astype(np.uint8)


def as_tensors(image: np.ndarray, trimap: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return mattezoo.inference.image_to_tensor(image), mattezoo.inference.trimap_to_tensor(trimap)


def seeded_model(**options) -> IndexNetMatting:
    with torch.device("meta"):
        model = build_indexnet(**options)
    model.to_empty(device="cpu")
    model.load_state_dict(seeded_state(model), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def released_model() -> IndexNetMatting:
    return seeded_model()


# --- architecture and the official outputs -----------------------------------------------------


def test_parameter_count_and_state_dict_layout_match_official():
    doc = official_layout()
    assert doc["parameter_count"] == 5_953_515 and len(doc["keys"]) == 549
    with torch.device("meta"):  # structure only
        model = build_indexnet()
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == doc["keys"]
    assert sum(p.numel() for p in model.parameters()) == doc["parameter_count"]


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "released"])
def test_other_official_configurations_have_the_official_size(name):
    expected = official_layout()["variants"][name]
    with torch.device("meta"):
        model = build_indexnet(**VARIANTS[name])
    assert len(model.state_dict()) == expected["key_count"]
    assert sum(p.numel() for p in model.parameters()) == expected["parameter_count"]


@contextlib.contextmanager
def opencv_without_ipp():
    """OpenCV's own resize code. Wheels route float INTER_CUBIC through Intel IPP when it is built in, whose
    results differ from OpenCV's own by ~3e-6 relative (float rounding of another implementation)."""
    cv2 = pytest.importorskip("cv2")
    used = cv2.ipp.useIPP()
    cv2.ipp.setUseIPP(False)
    try:
        yield cv2
    finally:
        cv2.ipp.setUseIPP(used)


def official_network_input(image: np.ndarray, trimap: np.ndarray, multiple: int) -> torch.Tensor:
    """demo.py's network input, restated with numpy (float64 normalisation) and OpenCV itself.

    (The output fixture was recorded with IPP on, as a stock wheel runs demo.py; the difference stays far
    below the tests' tolerance.)
    """
    x = np.concatenate((image, trimap[..., None]), axis=2).astype(np.float32)
    mean, std = np.array([0.485, 0.456, 0.406, 0.0]), np.array([0.229, 0.224, 0.225, 1.0])
    x = ((x / 255.0 - mean) / std).astype(np.float32)
    h, w = (-(-s // multiple) * multiple for s in x.shape[:2])
    with opencv_without_ipp() as cv2:
        colour = cv2.resize(x[..., :3], (w, h), interpolation=cv2.INTER_CUBIC)
        trimap_channel = cv2.resize(x[..., 3], (w, h), interpolation=cv2.INTER_NEAREST)
    return torch.from_numpy(np.concatenate((colour, trimap_channel[..., None]), axis=2).transpose(2, 0, 1))[None]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_network_output_equals_the_official_module_for_the_same_weights(released_model, name):
    entry = json.loads((DATA / "indexnet_official_outputs.json").read_text())[name]
    model = released_model if name == "released" else seeded_model(**VARIANTS[name])
    x = official_network_input(*fixture_inputs(), model.output_stride)
    assert list(x.shape[-2:]) == entry["input_size"]
    with torch.no_grad():
        raw = model.forward_network(x)[0, 0]
    torch.testing.assert_close(raw[GRID], torch.tensor(entry["raw"]), rtol=0, atol=2e-5)
    assert float(raw.double().mean()) == pytest.approx(entry["raw_mean"], abs=1e-5)


def test_infer_equals_the_official_demo_procedure(released_model):
    entry = json.loads((DATA / "indexnet_official_outputs.json").read_text())["released"]
    image, trimap = as_tensors(*fixture_inputs())
    alpha = released_model.infer(image, trimap)[0, 0]
    torch.testing.assert_close(alpha[GRID], torch.tensor(entry["alpha"]), rtol=0, atol=2e-5)
    assert float(alpha.double().mean()) == pytest.approx(entry["alpha_mean"], abs=1e-5)


def test_infer_passes_the_network_the_official_input(released_model, monkeypatch):
    image_np, trimap_np = fixture_inputs(37, 45)
    seen = []
    original = released_model.forward_network
    monkeypatch.setattr(released_model, "forward_network", lambda x: seen.append(x) or original(x))
    released_model.infer(*as_tensors(image_np, trimap_np))
    expected = official_network_input(image_np, trimap_np, 32)
    assert seen[0].shape == expected.shape == (1, 4, 64, 64)
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=2e-6)


# --- OpenCV's resizes and the input encoding ---------------------------------------------------


@pytest.mark.parametrize("src,dst", [((50, 70), (64, 96)), ((64, 96), (50, 70)), ((7, 5), (32, 32)), ((33, 64), (64, 64)),
                                     ((100, 41), (37, 29))])
def test_cubic_resize_equals_opencv(src, dst):
    x = torch.randn(3, *src, generator=torch.Generator().manual_seed(src[0] * 100 + dst[1])) * 2
    with opencv_without_ipp() as cv2:
        expected = cv2.resize(x.numpy().transpose(1, 2, 0), dst[::-1], interpolation=cv2.INTER_CUBIC)
    torch.testing.assert_close(inference.resize_cubic_cv2(x[None], dst)[0], torch.from_numpy(expected.transpose(2, 0, 1)),
                               rtol=0, atol=2e-6)


@pytest.mark.parametrize("src,dst", [((50, 70), (64, 96)), ((64, 96), (50, 70)), ((3, 7), (32, 32)), ((99, 45), (128, 64)),
                                     ((1000, 999), (1024, 1024))])
def test_nearest_resize_equals_opencv(src, dst):
    x = torch.arange(src[0] * src[1], dtype=torch.float32).reshape(src)
    with opencv_without_ipp() as cv2:
        expected = cv2.resize(x.numpy(), dst[::-1], interpolation=cv2.INTER_NEAREST)
    assert torch.equal(inference.resize_nearest_cv2(x, dst), torch.from_numpy(expected))


def test_input_encoding_is_the_official_normalisation():
    image_np, trimap_np = fixture_inputs(9, 11)
    encoded = inference.encode_input(*as_tensors(image_np, trimap_np))[0]
    x = np.concatenate((image_np, trimap_np[..., None]), axis=2) / 255.0
    expected = (x - np.array([0.485, 0.456, 0.406, 0.0])) / np.array([0.229, 0.224, 0.225, 1.0])
    torch.testing.assert_close(encoded.double(), torch.from_numpy(expected.transpose(2, 0, 1)), rtol=0, atol=1e-6)
    assert encoded[3].unique().tolist() == pytest.approx([0.0, 128 / 255, 1.0])


@pytest.mark.parametrize(
    "height,width,max_side,expected",
    [
        (50, 70, 2048, (64, 96)),  # rounded up, as image_alignment does
        (64, 64, 2048, (64, 64)),
        (1080, 1920, 2048, (1088, 1920)),
        (3000, 1000, 2048, (2048, 704)),  # over the cap: scaled to 2048 × 682, then rounded up
        (20, 9, 2048, (32, 32)),
        (2100, 2100, 1000, (992, 992)),  # the cap rounded down to a multiple of 32
    ],
)
def test_working_size(height, width, max_side, expected):
    assert inference.aligned_size(height, width, 32, max_side) == expected


def test_max_side_caps_the_pass_and_the_matte_keeps_the_image_size(released_model, monkeypatch):
    seen = []
    original = released_model.forward_network
    monkeypatch.setattr(released_model, "forward_network", lambda x: seen.append(tuple(x.shape[-2:])) or original(x))
    image, trimap = as_tensors(*fixture_inputs(90, 40))
    alpha = released_model.infer(image, trimap, max_side=64)
    assert seen == [(64, 32)] and alpha.shape == (1, 1, 90, 40)


# --- the alpha rules -----------------------------------------------------------------------------


def test_known_pixels_take_the_trimap_values_exactly(released_model):
    image, trimap = as_tensors(*fixture_inputs(45, 30))
    image, trimap = image.repeat(2, 1, 1, 1), trimap.repeat(2, 1, 1, 1)
    trimap[1] = torch.flip(trimap[1], dims=(-1,))  # a different trimap per sample
    alpha = released_model.infer(image, trimap)
    assert torch.equal(alpha[trimap != 0.5], trimap[trimap != 0.5])
    unknown = alpha[trimap == 0.5]
    assert 0 <= float(unknown.min()) and float(unknown.max()) <= 1 and float(unknown.std()) > 0.01


def test_forward_clips_the_raw_prediction_on_the_unknown_region(released_model):
    image, trimap = as_tensors(*fixture_inputs(32, 64))
    with torch.no_grad():
        out = released_model.forward_intermediates(image, trimap)
        raw = released_model.forward_network(inference.encode_input(image, trimap))
    assert torch.equal(out.raw, raw) and float(raw.max()) > 1  # the fixture weights overshoot somewhere
    expected = np.where(trimap.numpy() == 0.5, np.clip(raw.numpy(), 0, 1), trimap.numpy())
    assert np.array_equal(out.alpha.numpy(), expected)
    assert torch.equal(released_model(image, trimap), out.alpha)


# --- checkpoints ---------------------------------------------------------------------------------


def test_released_checkpoint_wrapping_loads_strictly_by_path_and_by_tag(tmp_path, monkeypatch):
    state = seeded_official_state()
    # hltrainval.py saves {"state_dict": DataParallel's state dict, "epoch": ..., ...}.
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 30,
               "measure": {"sad": [45.8], "mse": [0.013]}}
    path = tmp_path / "indexnet_matting.pth.tar"
    torch.save(wrapped, path)
    by_path = mattezoo.create_method("indexnet", pretrained=str(path))
    assert all(torch.equal(by_path.state_dict()[k], v) for k, v in state.items())
    assert not by_path.training
    monkeypatch.setenv("MATTEZOO_WEIGHTS", str(tmp_path))
    by_tag = mattezoo.create_method("indexnet.adobe")
    assert torch.equal(by_tag.index6.indexnet4[3].weight, state["index6.indexnet4.3.weight"])


def test_checkpoint_of_another_configuration_lists_what_does_not_fit(tmp_path):
    with torch.device("meta"):
        other = build_indexnet(index_mode="o2o")
    state = {k: torch.zeros(v.shape) for k, v in other.state_dict().items()}
    path = tmp_path / "o2o.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"shape mismatches: index0\.indexnet1\.0\.weight"):
        mattezoo.create_method("indexnet", pretrained=str(path))
    mattezoo.create_method("indexnet", index_mode="o2o", pretrained=str(path))  # the matching configuration loads


def imagenet_mobilenet_v2_state() -> dict[str, torch.Tensor]:
    """A file laid out like CSAIL's mobilenet_v2.pth.tar: features.0 .. features.18 and the classifier."""
    state = {"features.0.0.weight": torch.randn(32, 3, 3, 3)}
    for leaf in ("weight", "bias", "running_mean", "running_var"):
        state[f"features.0.1.{leaf}"] = torch.rand(32)
    feature = 1
    with torch.device("meta"):
        reference = build_indexnet()
    for number, blocks in enumerate((1, 2, 3, 4, 3, 3, 1), start=1):
        for block in range(blocks):
            prefix = f"layer{number}.{block}.conv."
            for key, value in reference.state_dict().items():
                if key.startswith(prefix) and not key.endswith("num_batches_tracked"):
                    state[f"features.{feature}.conv.{key[len(prefix):]}"] = torch.randn(value.shape)
            feature += 1
    state["features.18.0.weight"] = torch.randn(1280, 320, 1, 1)
    state["classifier.1.weight"] = torch.randn(1000, 1280)
    return state


def test_imagenet_mobilenet_v2_loads_into_the_encoder(tmp_path):
    state = imagenet_mobilenet_v2_state()
    path = tmp_path / "mobilenet_v2.pth.tar"
    torch.save(state, path)
    model = mattezoo.create_method("indexnet", backbone_weights=str(path))
    first = model.layer0[0].weight
    assert torch.equal(first[:, :3], state["features.0.0.weight"]) and not first[:, 3].any()
    assert torch.equal(model.layer4[3].conv[6].weight, state["features.10.conv.6.weight"])
    assert torch.equal(model.layer7[0].conv[7].running_var, state["features.17.conv.7.running_var"])
    del state["features.12.conv.4.bias"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"lacks 1 MobileNetV2 keys: features\.12\.conv\.4\.bias"):
        mattezoo.create_method("indexnet", backbone_weights=str(path))


# --- bad input -----------------------------------------------------------------------------------


def good_inputs(height: int = 32, width: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    return as_tensors(*fixture_inputs(height, width))


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda i, t: (i[:, :1], t), r"RGB image tensor \[B,3,H,W\]"),
        (lambda i, t: (i.fill_(float("nan")), t), "NaN"),
        (lambda i, t: (i * 255, t), r"\[0,1\]"),
        (lambda i, t: (i, None), "needs a trimap"),
        (lambda i, t: (i, t[..., :30]), r"does not match the image.*must be \(1, 1, 32, 32\)"),
        (lambda i, t: (i, t[:, 0]), r"trimap tensor \[B,1,H,W\]"),
        (lambda i, t: (i, (t * 255).to(torch.uint8)), "float trimap"),
        (lambda i, t: (i, t.masked_fill(t == 0.5, 0.25)), r"odd value\(s\) \(0\.25\); valid values: 0 \(background\), 0\.5 \(unknown\), 1 \(foreground\)"),
        (lambda i, t: (i, t.masked_fill(t == 1, float("inf"))), "NaN or infinite"),
    ],
)
def test_infer_refuses_bad_input(released_model, change, message):
    image, trimap = change(*good_inputs())
    with pytest.raises(InputError, match=message):
        released_model.infer(image, trimap)


def test_passes_refuse_sizes_that_are_not_multiples_of_the_stride(released_model):
    image, trimap = good_inputs(32, 40)
    with pytest.raises(InputError, match="multiples of 32"):
        released_model(image, trimap)
    with pytest.raises(InvalidOptionError, match="max_side must be an int >= 32"):
        released_model.infer(*good_inputs(), max_side=16)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"indexnet": "dynamic"}, "valid: holistic, depthwise"),
        ({"index_mode": "m2m"}, "valid: o2o, m2o"),
        ({"output_stride": 8}, "valid: 32, 16"),
        ({"conv_operator": "deform"}, "valid: std_conv, dep_sep_conv"),
        ({"decoder_kernel_size": 4}, "odd positive int"),
        ({"max_side": 0}, "max_side must be an int >= 32"),
        ({"decoder": "unet_style"}, "no option 'decoder'"),
    ],
)
def test_bad_options_are_refused_with_the_choices(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        mattezoo.create_method("indexnet", **options)


# --- registration ----------------------------------------------------------------------------------


def test_paper_rows_of_p3m_table_2():
    spec = mattezoo.get_method("indexnet")
    table2 = {r.protocol: dict(r.metrics) for r in spec.paper(source="P3M Table 2", test_set="P3M-500-P")}
    assert table2 == {
        "B:B": {"SAD": 5.1959, "MSE": 0.0156, "MAD": 0.0368},
        "B:N": {"SAD": 5.2188, "MSE": 0.0158, "MAD": 0.0370},
        "N:B": {"SAD": 5.8267, "MSE": 0.0202, "MAD": 0.0420},
        "N:N": {"SAD": 5.8509, "MSE": 0.0204, "MAD": 0.0422},
    }
    assert len(spec.paper_results) == 4  # no Table 4 row
    assert spec.family == "trimap-based" and spec.weights["adobe"].file == "indexnet_matting.pth.tar"


# --- training ----------------------------------------------------------------------------------------


def official_weighted_loss(pred, alpha, trimap, fg, bg, image, wl=0.5, epsilon=1e-6):
    """hltrainval.py's weighted_loss restated on its [B,11,H,W] target (alpha, mask, fg, bg, composite), sample by sample."""
    target = torch.cat((alpha, (trimap == 0.5).float(), fg, bg, image), dim=1).double()
    total = 0.0
    for p, t in zip(pred.double(), target):
        mask, count = t[1:2], t[1].sum()
        loss_alpha = torch.sqrt(((p - t[0:1]) * mask) ** 2 + epsilon**2).sum() / count
        composite = p * t[2:5] + (1 - p) * t[5:8]
        loss_comp = torch.sqrt(((composite - t[8:11]) * mask) ** 2 + epsilon**2).sum() / count
        total += wl * loss_alpha + (1 - wl) * loss_comp
    return total / pred.shape[0]


def synthetic_batch(size: int = 64, batch: int = 2) -> dict[str, torch.Tensor]:
    return disc_batch(size, batch, ramp=6)


def test_losses_equal_the_official_weighted_loss():
    batch = synthetic_batch(32, 3)
    batch["trimap"][1, :, :8] = 0.5  # samples with different unknown areas: the normalisation is per sample
    raw = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(5)) * 1.4 - 0.2
    ours = indexnet_losses(raw, batch)
    expected = official_weighted_loss(raw, batch["alpha"], batch["trimap"], batch["fg"], batch["bg"], batch["image"])
    assert float(ours["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(ours["loss"]) == pytest.approx(0.5 * float(ours["alpha"]) + 0.5 * float(ours["composition"]), rel=1e-6)
    weighted = indexnet_losses(raw, batch, alpha_weight=0.8)["loss"]
    expected = official_weighted_loss(raw, batch["alpha"], batch["trimap"], batch["fg"], batch["bg"], batch["image"], wl=0.8)
    assert float(weighted) == pytest.approx(float(expected), rel=1e-5)


def test_a_sample_without_unknown_pixels_gives_a_finite_loss():
    batch = synthetic_batch(32, 1)
    batch["trimap"] = torch.ones_like(batch["trimap"])
    parts = indexnet_losses(torch.full((1, 1, 32, 32), 0.5), batch)
    # No unknown pixel: each of the H·W pixels adds epsilon, divided by 1 instead of 0.
    assert float(parts["alpha"]) == pytest.approx(32 * 32 * 1e-6, rel=1e-3)


def test_recipe_and_the_official_parameter_groups():
    recipe = indexnet_recipe()
    assert recipe.lr == INDEXNET_LR == 1e-2 and set(recipe.needs) == {"image", "alpha", "trimap", "fg", "bg"}
    with pytest.raises(InvalidOptionError, match=r"alpha_weight must be a number in \[0, 1\]"):
        indexnet_recipe(alpha_weight=1.5)
    with torch.device("meta"):
        model = build_indexnet()
    new, encoder = official_parameter_groups(model)
    encoder_ids = {id(p) for name, p in model.named_parameters() if name.split(".")[0][:-1] == "layer"}
    assert {id(p) for p in encoder["params"]} == encoder_ids and encoder["lr"] == pytest.approx(1e-4)
    assert len(new["params"]) + len(encoder["params"]) == len(list(model.parameters())) and new["lr"] == 1e-2


def test_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    model = build_indexnet().train()
    recipe = indexnet_recipe()
    batch = synthetic_batch(32)
    losses = [float(h["loss"]) for h in adam_steps(recipe.stages[0].loss, model, batch, 4, lr=1e-3)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses
