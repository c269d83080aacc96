"""GCA Matting: official key layout and size, outputs of the official network and test scripts, spectral norm,
attention, known regions, checkpoints, bad input, training.

Fixtures in ``data/`` were recorded once by running the official code
(Yaoyi-Li/GCA-Matting at 5a999be: ``networks.get_generator("resnet_gca_encoder_29",
"res_gca_decoder_22")``, and the test-time preprocessing of ``demo.py`` and of
``dataloader/data_generator.py`` for ``tester.py``) outside this repository:

* ``gca_official_keys.json``: its ``state_dict()`` keys and shapes in order,
  and its parameter count (the official counts ``weight_u`` / ``weight_v`` as
  parameters; here they are buffers);
* ``gca_official_outputs.json``: with the weights :func:`seeded_official_state`
  generates, in eval mode, the network's alpha for :func:`fixture_inputs` on a
  4-pixel grid (and its means), and the full test procedure's alpha (padding,
  one-hot trimap, known regions, crop; before the uint8 cast) of
  :func:`fixture_picture` for both scripts on a 3-pixel grid.

The conformance run over every registered method (tests/test_conformance.py)
covers predict, odd sizes, determinism, known regions, batches and backward.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mattezoo
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError

from adam_steps import adam_steps
from disc_batches import disc_batch
from seeded_weights import model_with_state, seeded_tensor as shared_seeded_tensor

DATA = Path(__file__).parent / "data"
NET_GRID = (slice(1, None, 4), slice(1, None, 4))
PICTURE_GRID = (slice(1, None, 3), slice(1, None, 3))
# The last conv sees activations that grew through the residual decoder: shrink
# it so tanh works in its sensitive range.
HEAD_SHRINK = {"decoder.conv2.weight": 150.0}


def official_layout() -> tuple[list[tuple[str, tuple[int, ...]]], int, int]:
    doc = json.loads((DATA / "gca_official_keys.json").read_text())
    return [(k, tuple(s)) for k, s in doc["keys"]], doc["parameter_count"], doc["trainable_parameter_count"]


def seeded_tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixture's weights, with the head shrunk."""
    return shared_seeded_tensor(name, shape, kernel_gain=1.0 / HEAD_SHRINK.get(name, 1.0))

def spectral_vectors(prefix: str, weight_bar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, v)`` with ``sigma = u · (W v)`` a seeded value in [1, 1.2].

    Random unit vectors would give sigmas near 0 of either sign (exploding
    kernels); with these, the effective kernels keep their He scale, and a
    wrong sigma still shows (up to 20% per layer).
    """
    gen = torch.Generator().manual_seed(zlib.crc32((prefix + "uv").encode()))
    matrix = weight_bar.double().reshape(weight_bar.shape[0], -1)
    v = torch.randn(matrix.shape[1], generator=gen, dtype=torch.float64)
    v = v / v.norm()
    wv = matrix @ v
    sigma = 1.0 + 0.2 * torch.rand((), generator=gen, dtype=torch.float64)
    return (sigma * wv / wv.dot(wv)).float(), v.float()


def seeded_official_state() -> dict[str, torch.Tensor]:
    """Seeded weights under every official key."""
    keys, _, _ = official_layout()
    state = {k: seeded_tensor(k, shape) for k, shape in keys if not k.endswith((".weight_u", ".weight_v"))}
    for key in [k for k in state if k.endswith(".weight_bar")]:
        prefix = key[: -len("weight_bar")]
        state[prefix + "weight_u"], state[prefix + "weight_v"] = spectral_vectors(prefix, state[key])
    return {k: state[k] for k, _ in keys}


def fixture_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded ``[2,3,64,96]`` image in [0,1] and two different trimaps (0/0.5/1), 4-pixel cells."""
    gen = torch.Generator().manual_seed(2020)
    image = torch.rand(2, 3, 64, 96, generator=gen)
    levels = torch.rand(2, 1, 16, 24, generator=gen)
    levels[1] = levels[1] * 0.6 + 0.2  # the second image has more unknown pixels
    trimap = torch.where(levels < 0.3, 0.0, torch.where(levels > 0.65, 1.0, 0.5))
    return image, F.interpolate(trimap, scale_factor=4, mode="nearest")


def fixture_picture() -> tuple[np.ndarray, np.ndarray]:
    """A seeded 45×70 uint8 RGB picture and its uint8 0/128/255 trimap (odd size: padding matters)."""
    rng = np.random.default_rng(45)
    image = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:45, 0:70]
    dist = np.hypot(yy - 20, xx - 38)
    trimap = np.where(dist < 10, 255, np.where(dist < 18, 128, 0)).astype(np.uint8)
    return image, trimap


@pytest.fixture(scope="module")
def seeded_model():
    from mattezoo_methods.gca.model import build_gca

    return model_with_state(build_gca, seeded_official_state())


def to_tensors(image: np.ndarray, trimap: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    from mattezoo.inference import image_to_tensor, trimap_to_tensor

    return image_to_tensor(image), trimap_to_tensor(trimap)


# --- architecture and the official outputs -----------------------------------------


def test_state_dict_layout_and_parameter_count_match_official():
    from mattezoo_methods.gca.model import build_gca

    keys, count, trainable = official_layout()
    assert (len(keys), count, trainable) == (578, 25_269_144, 25_164_529)
    with torch.device("meta"):  # structure only
        model = build_gca()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == dict(keys)
    vectors = {n: b for n, b in model.named_buffers() if n.endswith((".weight_u", ".weight_v"))}
    assert len(vectors) == 2 * sum(k.endswith(".weight_bar") for k, _ in keys)
    assert sum(p.numel() for p in model.parameters()) == trainable
    assert sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in vectors.values()) == count


def test_network_output_equals_the_official_network_for_the_same_weights(seeded_model):
    doc = json.loads((DATA / "gca_official_outputs.json").read_text())
    image, trimap = fixture_inputs()
    with torch.no_grad():
        out = seeded_model.forward_intermediates(image, trimap)
        again = seeded_model(image, trimap)
    torch.testing.assert_close(out.network[:, 0][(slice(None), *NET_GRID)], torch.tensor(doc["network"]), rtol=0, atol=2e-5)
    assert out.network.double().mean(dim=(1, 2, 3)).tolist() == pytest.approx(doc["network_means"], abs=1e-5)
    assert torch.equal(again, out.alpha)  # eval mode leaves the spectral-norm vectors alone: same result twice


@pytest.mark.parametrize("padding", ["test", "demo"])
def test_infer_equals_the_official_test_scripts(seeded_model, padding):
    doc = json.loads((DATA / "gca_official_outputs.json").read_text())
    image, trimap = to_tensors(*fixture_picture())
    alpha = seeded_model.infer(image, trimap, padding=padding)
    assert alpha.shape == (1, 1, 45, 70) and alpha.dtype == torch.float32
    torch.testing.assert_close(alpha[0, 0][PICTURE_GRID], torch.tensor(doc[padding]), rtol=0, atol=2e-5)
    assert float(alpha.double().mean()) == pytest.approx(doc[f"{padding}_mean"], abs=1e-5)


def test_forward_encodes_the_image_and_one_hot_trimap_and_fills_the_known_regions(seeded_model):
    from mattezoo_methods.gca.model import IMAGENET_MEAN, IMAGENET_STD

    image, trimap = fixture_inputs()
    seen = {}
    handle = seeded_model.encoder.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    try:
        with torch.no_grad():
            out = seeded_model.forward_intermediates(image, trimap)
    finally:
        handle.remove()
    x = seen["x"]
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x[:, :3], (image - mean) / std, rtol=0, atol=1e-6)
    for channel, value in enumerate((0.0, 0.5, 1.0)):  # background, unknown, foreground
        assert torch.equal(x[:, 3 + channel], (trimap[:, 0] == value).float())
    expected = np.where(trimap.numpy() == 1, 1.0, np.where(trimap.numpy() == 0, 0.0, out.network.numpy()))
    assert np.array_equal(out.alpha.numpy(), expected.astype(np.float32))


# --- spectral norm and attention against plain references ---------------------------


@pytest.mark.parametrize("transposed", [False, True])
def test_spectral_norm_uses_stored_vectors_in_eval_and_one_power_iteration_in_training(transposed):
    from mattezoo_methods.gca.spectral import SpectralNorm

    torch.manual_seed(3)
    conv = torch.nn.ConvTranspose2d(4, 5, 4, 2, 1, bias=False) if transposed else torch.nn.Conv2d(4, 5, 3, padding=1, bias=False)
    layer = SpectralNorm(conv)
    x = torch.randn(2, 4, 6, 6)
    w = conv.weight_bar.detach().double().numpy()
    matrix = w.reshape(w.shape[0], -1)
    u0, v0 = conv.weight_u.double().numpy().copy(), conv.weight_v.double().numpy().copy()
    op = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    kwargs = {"stride": 2, "padding": 1} if transposed else {"padding": 1}

    def expected(u, v):
        return op(x.double(), torch.from_numpy(w / (u @ matrix @ v)), **kwargs).float()

    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected(u0, v0), rtol=1e-5, atol=1e-5)
        layer(x)
    assert np.array_equal(conv.weight_u.double().numpy(), u0) and np.array_equal(conv.weight_v.double().numpy(), v0)

    layer.train()
    v1 = matrix.T @ u0
    v1 /= np.linalg.norm(v1) + 1e-12
    u1 = matrix @ v1
    u1 /= np.linalg.norm(u1) + 1e-12
    out = layer(x)
    torch.testing.assert_close(conv.weight_u.double(), torch.from_numpy(u1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(conv.weight_v.double(), torch.from_numpy(v1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, expected(u1, v1), rtol=1e-4, atol=1e-5)
    out.square().sum().backward()
    assert conv.weight_bar.grad is not None and conv.weight_bar.grad.abs().sum() > 0
    assert [n for n, _ in layer.named_parameters()] == ["module.weight_bar"]


def reference_attention(att, guidance, features, unknown) -> np.ndarray:
    """The GCA block restated pixel by pixel in float64 (numpy reflect padding, explicit sums)."""
    with torch.no_grad():
        g = att.guidance_conv(guidance).double().numpy()[:, :, ::2, ::2]  # nearest 1/2
        w_conv = att.W[0].weight.double().numpy()[:, :, 0, 0]
        bn = att.W[1]
        scale_bn = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).double().numpy()
        shift_bn = bn.bias.double().numpy() - bn.running_mean.double().numpy() * scale_bn
    f = features.double().numpy()
    m = unknown.double().numpy()[:, 0, ::2, ::2]
    batch, _, h, w = g.shape
    out = np.empty_like(f)
    for b in range(batch):
        gp = np.pad(g[b], ((0, 0), (1, 1), (1, 1)), mode="reflect")
        mp = np.pad(m[b], 1, mode="reflect")
        fp = np.pad(f[b], ((0, 0), (1, 1), (1, 1)), mode="reflect")
        patches = [gp[:, i:i + 3, j:j + 3] for i in range(h) for j in range(w)]
        u = m[b].mean()
        with np.errstate(divide="ignore"):  # an all-unknown (or all-known) mask: the scales clamp, as officially
            scale_u = np.clip(np.sqrt(u / (1 - u)), 0.1, 10)
            scale_k = np.clip(np.sqrt((1 - u) / u), 0.1, 10)
        scores = np.zeros((h * w, h * w))
        for l, src in enumerate(patches):
            li, lj = divmod(l, w)
            is_unknown = mp[li:li + 3, lj:lj + 3].max() > 0
            norm = max(np.sqrt((src**2).sum()), 1e-4)
            for p, dst in enumerate(patches):
                scores[l, p] = (src / norm * dst).sum() * (scale_u if is_unknown else scale_k)
            if is_unknown:
                scores[l, l] -= 1e4
        weights = np.exp(scores - scores.max(axis=0))
        weights /= weights.sum(axis=0)
        context = np.zeros((f.shape[1], 2 * h + 2, 2 * w + 2))  # transposed conv before cropping its padding of 1
        for l in range(h * w):
            li, lj = divmod(l, w)
            source = fp[:, 2 * li:2 * li + 4, 2 * lj:2 * lj + 4]
            for p in range(h * w):
                pi, pj = divmod(p, w)
                context[:, 2 * pi:2 * pi + 4, 2 * pj:2 * pj + 4] += weights[l, p] * source
        context = context[:, 1:-1, 1:-1] / 4
        mixed = np.einsum("oc,chw->ohw", w_conv, context)
        out[b] = mixed * scale_bn[:, None, None] + shift_bn[:, None, None] + f[b]
    return out


def test_guided_contextual_attention_equals_a_per_pixel_reference():
    from mattezoo_methods.gca.attention import GuidedContextualAttention

    torch.manual_seed(5)
    att = GuidedContextualAttention(channels=6, guidance_channels=8).eval()
    with torch.no_grad():
        att.W[1].weight.fill_(0.7)  # the official 1e-3 would hide the context
        att.W[1].running_var.uniform_(0.5, 1.5)
    guidance, features = torch.randn(3, 8, 8, 6), torch.randn(3, 6, 8, 6)
    unknown = torch.zeros(3, 1, 8, 6)
    unknown[0, :, 2:5, 1:4] = 1  # some unknown
    unknown[2] = 1  # all unknown: known-scale sqrt(0/1) clamps to 0.1, unknown-scale to 10
    with torch.no_grad():
        ours = att(guidance, features, unknown)
    expected = reference_attention(att, guidance, features, unknown)
    torch.testing.assert_close(ours.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-5)


# --- test-time procedure ----------------------------------------------------------------


@pytest.mark.parametrize("size,before,after", [(7, 3, 5), (5, 32, 32), (4, 0, 13), (1, 2, 3), (45, 32, 51)])
def test_reflect_padding_is_numpys(size, before, after):
    from mattezoo_methods.gca.inference import reflect_indices

    expected = np.pad(np.arange(size), (before, after), mode="reflect")
    assert reflect_indices(size, before, after).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "height,width,padding,expected",
    [
        (64, 96, "test", (0, 0, 0, 0)),  # multiples of 32: as it is
        (45, 70, "test", (0, 19, 0, 26)),
        (64, 96, "demo", (32, 32, 32, 32)),
        (45, 70, "demo", (32, 51, 32, 58)),
    ],
)
def test_padding_is_the_official_scripts(height, width, padding, expected):
    from mattezoo_methods.gca.inference import padding_of

    assert padding_of(height, width, padding) == expected


def test_predict_honours_the_trimap_and_any_size():
    net = mattezoo.create_method("gca", padding="demo")
    rng = np.random.default_rng(0)
    for height, width in ((5, 7), (33, 20)):  # the demo border is longer than these sides
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        trimap = rng.choice(np.array([0, 128, 255], np.uint8), (height, width))
        alpha = mattezoo.predict(net, image, trimap)
        assert alpha.shape == (height, width)
        assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
        assert np.all((alpha >= 0) & (alpha <= 1))


# --- checkpoints -----------------------------------------------------------------------


def test_official_checkpoint_loads_strictly_by_path_and_by_tag(tmp_path, monkeypatch):
    state = seeded_official_state()
    # The official trainer saves {"iter", "loss", "state_dict" of the DDP-wrapped model, ...}.
    checkpoint = {"iter": 200000, "loss": torch.tensor(0.01), "state_dict": {f"module.{k}": v for k, v in state.items()}}
    torch.save(checkpoint, tmp_path / "gca-dist-all-data.pth")
    by_path = mattezoo.create_method("gca", pretrained=str(tmp_path / "gca-dist-all-data.pth"))
    assert all(torch.equal(by_path.state_dict()[k], v) for k, v in state.items())
    assert not by_path.training
    monkeypatch.setenv("MATTEZOO_WEIGHTS", str(tmp_path))
    by_tag = mattezoo.create_method("gca.all_data")
    assert torch.equal(by_tag.encoder.gca.W[0].weight, state["encoder.gca.W.0.weight"])
    assert torch.equal(by_tag.decoder.layer1[0].conv1.module.weight_u, state["decoder.layer1.0.conv1.module.weight_u"])


def test_checkpoint_that_does_not_fit_lists_missing_and_unexpected_keys(tmp_path):
    state = seeded_official_state()
    del state["encoder.conv1.module.weight_v"]
    state["encoder.conv1.weight"] = torch.zeros(32, 6, 3, 3)  # a plain conv where the official has spectral norm
    torch.save({"state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: encoder\.conv1\.module\.weight_v.*unexpected keys: encoder\.conv1\.weight"):
        mattezoo.create_method("gca", pretrained=str(tmp_path / "bad.pth"))


# --- bad input -----------------------------------------------------------------------------


def good_pair(height=64, width=64):
    return torch.rand(1, 3, height, width), torch.full((1, 1, height, width), 0.5)


@pytest.mark.parametrize(
    "image,trimap,message",
    [
        (torch.rand(1, 1, 64, 64), good_pair()[1], r"RGB image tensor \[B,3,H,W\]"),
        (torch.full((1, 3, 64, 64), float("nan")), good_pair()[1], "NaN"),
        (torch.rand(1, 3, 64, 64) * 255, good_pair()[1], r"\[0,1\]"),
        (good_pair()[0], None, "needs a trimap"),
        (good_pair()[0], torch.full((1, 64, 64), 0.5), r"trimap tensor \[B,1,H,W\]"),
        (good_pair()[0], torch.full((1, 1, 64, 63), 0.5), "does not match the image"),
        (good_pair()[0], torch.full((2, 1, 64, 64), 0.5), "does not match the image"),
        (good_pair()[0], torch.full((1, 1, 64, 64), 128, dtype=torch.uint8), "float trimap"),
        (good_pair()[0], torch.full((1, 1, 64, 64), 0.25), r"odd value\(s\) \(0\.25\); valid values: 0 \(background\), 0\.5 \(unknown\), 1 \(foreground\)"),
        (good_pair()[0], torch.full((1, 1, 64, 64), float("nan")), "NaN or infinite values; valid values: 0 "),
    ],
)
def test_infer_refuses_bad_input(seeded_model, image, trimap, message):
    with pytest.raises(InputError, match=message):
        seeded_model.infer(image, trimap)


def test_infer_refuses_images_over_max_side_and_passes_refuse_odd_sizes(seeded_model):
    with pytest.raises(InputError, match="larger than GCA's max_side=64"):
        seeded_model.infer(*good_pair(64, 65), max_side=64)
    with pytest.raises(InputError, match="multiples of 32"):
        seeded_model(*good_pair(64, 50))
    with pytest.raises(InvalidOptionError, match="valid: 'test'"):
        seeded_model.infer(*good_pair(), padding="zeros")


@pytest.mark.parametrize(
    "options,message",
    [
        ({"padding": "edge"}, r"valid: 'test' \(official tester\.py"),
        ({"max_side": 16}, "max_side must be an int >= 32"),
        ({"trimap_channels": 1}, "no option 'trimap_channels'"),
    ],
)
def test_bad_options_are_refused_with_the_choices(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        mattezoo.create_method("gca", **options)


# --- registration -----------------------------------------------------------------------------


def test_paper_rows_of_p3m_table_2():
    spec = mattezoo.get_method("gca")
    rows = {r.protocol: dict(r.metrics) for r in spec.paper(source="P3M Table 2", test_set="P3M-500-P")}
    assert rows == {
        "B:B": {"SAD": 4.3593, "MSE": 0.0088, "MAD": 0.0307},
        "B:N": {"SAD": 4.3469, "MSE": 0.0089, "MAD": 0.0306},
        "N:B": {"SAD": 4.4068, "MSE": 0.0089, "MAD": 0.0310},
        "N:N": {"SAD": 4.4002, "MSE": 0.0089, "MAD": 0.0310},
    }
    assert spec.family == "trimap-based" and spec.weights["all_data"].file == "gca-dist-all-data.pth"


# --- training ----------------------------------------------------------------------------------


def synthetic_batch(size: int = 64, batch: int = 2) -> dict[str, torch.Tensor]:
    return disc_batch(size, batch, ramp=6)


def test_loss_is_the_official_unknown_region_l1(seeded_model):
    from mattezoo_methods.gca.recipe import gca_recipe

    batch = synthetic_batch()
    with torch.no_grad():
        network = seeded_model.forward_intermediates(batch["image"], batch["trimap"]).network
        parts = gca_recipe().stages[0].loss(seeded_model, batch)
    weight = (batch["trimap"] == 0.5).float()
    expected = F.l1_loss(network * weight, batch["alpha"] * weight, reduction="sum") / (weight.sum() + 1e-8)
    assert set(parts) == {"loss", "rec"}
    assert float(parts["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert gca_recipe().lr == 4e-4 and set(gca_recipe().needs) == {"image", "alpha", "trimap"}


def test_loss_decreases_over_a_few_steps():
    from mattezoo_methods.gca.model import build_gca
    from mattezoo_methods.gca.recipe import gca_recipe

    torch.manual_seed(0)
    model = build_gca().train()
    recipe = gca_recipe()
    batch = synthetic_batch()
    losses = [float(h["loss"]) for h in adam_steps(recipe.stages[0].loss, model, batch, 3, lr=recipe.lr)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.75 * losses[0], losses
