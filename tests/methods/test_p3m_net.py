"""P3M-Net: official key layout and size, checkpoint loading, ablation switches, fusion and test strategies.

The key-layout fixtures in ``data/`` list the ``state_dict()`` keys and shapes
of the official models (JizhiziLi/P3M ``P3mNet()``; ViTAE-Transformer/P3M-Net
``p3mnet_swin_t(img_size=512)``), recorded once; the official code is not part
of this repository. The conformance run over every registered method
(tests/test_conformance.py) covers forward, backward, odd sizes and batches.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mattezoo
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo.hybrid import working_size
from mattezoo_methods.p3m import ablation_test_set
from mattezoo_methods.p3m.inference import fuse
from mattezoo_methods.p3m.model import P3MNet, build_p3m_net

from strategy_checks import PassRecorder, skimage_reference

DATA = Path(__file__).parent / "data"
MODULE_PREFIXES = {"tfi": ("tfi_",), "sbfi": ("sbfi_",), "dbfi": ("dbfi_",)}


def official_layout(name: str = "p3m_net_r34_official_keys.json") -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    doc = json.loads((DATA / name).read_text())
    return [(k, tuple(shape)) for k, shape in doc["keys"]], doc["parameter_count"]


def layout_of(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def canonical(key: str) -> str:
    """The official model registers its ResNet twice; map an alias key to its ``resnet.`` name."""
    head, _, rest = key.partition(".")
    if head == "encoder0":
        index, _, leaf = rest.partition(".")
        return f"resnet.{ {'0': 'conv1', '1': 'bn1'}[index]}.{leaf}"
    if head == "encoder1":
        return "resnet.layer1." + rest.partition(".")[2]
    if head in ("encoder2", "encoder3", "encoder4"):
        return f"resnet.layer{head[-1]}.{rest}"
    return key


def official_style_checkpoint(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under every official key (aliases sharing their tensor, as in a real save)."""
    gen = torch.Generator().manual_seed(seed)
    keys, _ = official_layout()
    tensors: dict[str, torch.Tensor] = {}
    for key, shape in keys:
        name = canonical(key)
        if name not in tensors:
            if key.endswith("num_batches_tracked"):
                tensors[name] = torch.tensor(7)
            elif key.endswith("running_var"):
                tensors[name] = torch.rand(shape, generator=gen) + 0.5
            else:
                tensors[name] = torch.randn(shape, generator=gen) * 0.05
    return {key: tensors[canonical(key)] for key, _ in keys}


def build_from(source: torch.nn.Module, **options) -> torch.nn.Module:
    """A P3M-Net with ``options`` whose weights are copied from ``source`` (built on meta: no init cost)."""
    with torch.device("meta"):
        net = build_p3m_net(**options)
    net.to_empty(device="cpu")
    own = net.state_dict()
    net.load_state_dict({k: v for k, v in source.state_dict().items() if k in own}, strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def model() -> P3MNet:
    torch.manual_seed(0)
    return build_p3m_net().eval()


# --- architecture ------------------------------------------------------------


def test_parameter_count_matches_official(model):
    _, official_count = official_layout()
    assert official_count == 39_478_060
    assert sum(p.numel() for p in model.parameters()) == official_count


def test_state_dict_has_official_keys_and_shapes_in_order(model):
    keys, _ = official_layout()
    assert layout_of(model) == keys


def test_encoder_has_stride1_stem_and_five_index_pools(model):
    assert model.resnet.conv1.stride == (1, 1) and model.resnet.conv1.kernel_size == (7, 7)
    pools = [getattr(model.resnet, f"maxpool{i}") for i in range(1, 6)]
    assert [(p.kernel_size, p.stride, p.padding) for p in pools] == [(3, 2, 1)] * 5
    feats = model.resnet.features(torch.rand(1, 3, 64, 64))
    sizes = [tuple(t.shape[1:]) for t in (feats.shallow, *feats.skips, feats.deep)]
    assert sizes == [(64, 64, 64), (64, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    # Indices point into the plane each pool read: the unpool targets.
    for idx, source in zip(feats.indices, (feats.shallow, *feats.skips)):
        assert idx.dtype == torch.int64 and int(idx.max()) < source.shape[-2] * source.shape[-1]


def test_forward_intermediates_shapes_and_fusion(model):
    image = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = model.forward_intermediates(image)
        alpha = model(image)
    assert out.global_logits.shape == (2, 3, 64, 96)
    assert out.local.shape == out.fused.shape == (2, 1, 64, 96)
    assert [s.shape for s in out.sides] == [(2, 3, 64, 96)] * 3
    assert torch.equal(alpha, out.fused)
    cls = out.global_logits.argmax(1, keepdim=True)
    assert torch.equal(out.fused[cls == 1], out.local[cls == 1])
    assert torch.all(out.fused[cls == 0] == 0) and torch.all(out.fused[cls == 2] == 1)
    assert set(out.trimap.unique().tolist()) <= {0.0, 0.5, 1.0}


def test_fuse_follows_the_official_rule():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 5.0], [1.0, 4.0, 0.0]]).T.reshape(1, 3, 1, 4)
    local = torch.tensor([0.3, 0.6, 0.2, 0.9]).reshape(1, 1, 1, 4)
    assert fuse(logits, local).flatten().tolist() == pytest.approx([0.0, 0.6, 1.0, 0.9])


# --- checkpoints ---------------------------------------------------------------


def test_official_layout_checkpoint_loads_strictly_by_path_and_by_tag(tmp_path, monkeypatch):
    state = official_style_checkpoint()
    # The official release wraps the state dict: {"state_dict": ...}.
    path = tmp_path / "p3mnet_pretrained_on_p3m10k.pth"
    torch.save({"state_dict": state, "epoch": 150}, path)
    by_path = mattezoo.create_method("p3m_net", pretrained=str(path))
    loaded = by_path.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    monkeypatch.setenv("MATTEZOO_WEIGHTS", str(tmp_path))
    by_tag = mattezoo.create_method("p3m_net.p3m10k")
    assert torch.equal(by_tag.decoder_final_l.weight, state["decoder_final_l.weight"])
    assert not by_tag.training


def test_checkpoint_that_does_not_fit_lists_missing_and_unexpected_keys(tmp_path):
    state = official_style_checkpoint()
    del state["tfi_3.conv1.weight"]
    state["tfi_9.conv1.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing keys: tfi_3\.conv1\.weight.*unexpected keys: tfi_9\.conv1\.weight"):
        mattezoo.create_method("p3m_net", pretrained=str(path))


def test_imagenet_backbone_file_loads_into_the_encoder(tmp_path):
    backbone = {k[len("resnet."):]: v for k, v in official_style_checkpoint(seed=3).items() if k.startswith("resnet.")}
    assert "fc.weight" in backbone and "layer4.2.bn2.running_var" in backbone
    path = tmp_path / "r34mp_pretrained_imagenet.pth.tar"
    torch.save(backbone, path)
    model = mattezoo.create_method("p3m_net", backbone_weights=str(path))
    assert torch.equal(model.resnet.layer3[0].downsample[0].weight, backbone["layer3.0.downsample.0.weight"])
    assert torch.equal(model.encoder0[0].weight, backbone["conv1.weight"])  # the official alias follows
    torch.save({k: v for k, v in backbone.items() if not k.startswith("fc.")}, path)
    with pytest.raises(CheckpointError, match=r"missing keys: fc\.bias, fc\.weight"):
        mattezoo.create_method("p3m_net", backbone_weights=str(path))


# --- ablation switches (paper Table 5) ---------------------------------------------


SWITCHES = list(itertools.product((False, True), repeat=3))


@pytest.mark.parametrize("tfi,sbfi,dbfi", SWITCHES)
def test_switches_remove_exactly_their_modules(tfi, sbfi, dbfi):
    keys, total = official_layout()
    off = tuple(p for flag, name in ((tfi, "tfi"), (sbfi, "sbfi"), (dbfi, "dbfi")) if not flag for p in MODULE_PREFIXES[name])
    expected = [(k, s) for k, s in keys if not k.startswith(off)]
    removed = sum(torch.Size(s).numel() for k, s in keys if k.startswith(off) and k.endswith(("weight", "bias")))
    with torch.device("meta"):  # structure only: no weight initialisation
        net = build_p3m_net(tfi=tfi, sbfi=sbfi, dbfi=dbfi)
    assert layout_of(net) == expected
    assert sum(p.numel() for p in net.parameters()) == total - removed
    assert (net.use_tfi, net.use_sbfi, net.use_dbfi) == (tfi, sbfi, dbfi)


def _neutralise(module: torch.nn.Module) -> None:
    """Zero the fusing BN's affine weights: an sBFI/dBFI then adds relu(0) = 0 to its residual input."""
    with torch.no_grad():
        module.bn1.weight.zero_()
        module.bn1.bias.zero_()


@pytest.mark.parametrize("switch", ["sbfi", "dbfi"])
def test_residual_modules_reduce_to_the_switched_off_model(model, switch):
    with_module = copy.deepcopy(model)
    without = build_from(model, **{switch: False})
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = with_module.forward_intermediates(image)
        for level in (0, 1, 2):
            _neutralise(getattr(with_module, f"{switch}_{level}"))
        neutral = with_module.forward_intermediates(image)
        reference = without.forward_intermediates(image)
    changed = before.local if switch == "sbfi" else before.global_logits
    assert not torch.allclose(changed, neutral.local if switch == "sbfi" else neutral.global_logits)
    torch.testing.assert_close(neutral.global_logits, reference.global_logits)
    torch.testing.assert_close(neutral.local, reference.local)
    assert len(reference.sides) == (0 if switch == "dbfi" else 3)


@pytest.mark.parametrize("tfi", [True, False])
def test_tfi_is_what_feeds_the_segmentation_decoder_into_the_matting_decoder(model, tfi):
    net = build_from(model, tfi=tfi, dbfi=False)
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = net.forward_intermediates(image).local
        net.decoder3_g[0].weight.add_(0.5)
        after = net.forward_intermediates(image).local
    assert torch.equal(before, after) is (not tfi)


def test_table5_rows_are_registered_for_every_ablation_configuration():
    spec = mattezoo.get_method("p3m_net")
    for tfi, sbfi, dbfi in [(False, False, False), (True, False, False), (True, True, False), (True, False, True), (True, True, True)]:
        for test_set in ("P3M-500-P", "P3M-500-NP"):
            rows = spec.paper(source="P3M Table 5", test_set=ablation_test_set(test_set, tfi=tfi, sbfi=sbfi, dbfi=dbfi))
            assert len(rows) == 1 and set(rows[0].metrics) == {"SAD", "MSE", "MAD"}
    full = spec.paper(source="P3M Table 5", test_set="P3M-500-P (TFI+sBFI+dBFI)")[0]
    assert full.metrics["SAD"] == spec.paper(source="P3M Table 4", test_set="P3M-500-P")[0].metrics["SAD"] == 8.73
    assert {r.protocol for r in spec.paper(source="P3M Table 3")} == {"B:B", "B:N", "N:B", "N:N"}


# --- test strategies ---------------------------------------------------------------


@pytest.mark.parametrize(
    "height,width,scale,max_side,expected",
    [
        (1080, 1920, 0.5, 1600, (512, 960)),  # int(540) -> 512, int(960) -> 960
        (1080, 1920, 1.0, 1600, (1056, 1600)),  # each side clamped on its own, as officially
        (70, 45, 0.5, 1600, (32, 32)),  # never below one 32-pixel cell
        (70, 45, 1.0, 1600, (64, 32)),
        (2000, 999, 1.0, 1000, (992, 992)),  # max_side rounded down to a multiple of 32
    ],
)
def test_working_size_is_the_official_rule(height, width, scale, max_side, expected):
    assert working_size(height, width, scale, max_side) == expected


def official_hybrid_fusion(half_logits: torch.Tensor, full_local: torch.Tensor, size, known_rule="official"):
    """The official HYBRID fusion in numpy/skimage, per image (JizhiziLi/P3M core/test.py, util.py).

    The ½-scale argmax becomes a uint8 trimap 0/128/255, resized with skimage
    (float64) times 255; ``known_rule="official"`` keeps a pixel as background
    or foreground where that equals 0 or 255 exactly, ``"solid"`` where it is
    within 255e-6 of them. Known pixels get 0/1, the rest the resized local matte.
    Returns (alpha, trimap 0/0.5/1) as float64 tensors [B,1,H,W].
    """
    skimage_transform = pytest.importorskip("skimage.transform")
    alphas, trimaps = [], []
    for logits, local in zip(half_logits.detach().numpy(), full_local.detach().float().numpy()):
        classes = np.argmax(logits, axis=0)
        trimap = np.where(classes == 1, 128, np.where(classes == 2, 255, 0)).astype(np.uint8)
        global_result = skimage_transform.resize(trimap, size) * 255.0
        local_result = skimage_transform.resize(local[0], size)
        if known_rule == "official":
            fg, bg = global_result == 255, global_result == 0
        else:
            fg, bg = global_result >= 255 * (1 - 1e-6), global_result <= 255e-6
        weighted = np.ones(global_result.shape)
        weighted[fg | bg] = 0
        alphas.append(np.where(weighted == 0, global_result / 255 if known_rule == "official" else fg * 1.0, local_result))
        trimaps.append(np.where(fg, 1.0, np.where(bg, 0.0, 0.5)))
    return torch.from_numpy(np.array(alphas))[:, None], torch.from_numpy(np.array(trimaps))[:, None]


@pytest.mark.parametrize("height,width", [(70, 45), (33, 97), (130, 98)])
@pytest.mark.parametrize("known_rule", ["official", "solid"])
def test_hybrid_on_odd_sizes(model, monkeypatch, height, width, known_rule):
    recorder = PassRecorder(model)
    monkeypatch.setattr(model, "inference_maps", recorder)
    image = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height))
    result = model.infer_details(image, strategy="hybrid", known_rule=known_rule)
    assert recorder.sizes == [working_size(height, width, 0.5, 1600), working_size(height, width, 1.0, 1600)]
    # HYBRID needs only the segmentation map at ½ scale and only the local matte at full scale.
    assert recorder.asked == [{"global_logits": True, "local": False}, {"global_logits": False, "local": True}]
    assert recorder.outputs[0].local is None and recorder.outputs[1].global_logits is None
    assert result.alpha.shape == result.trimap.shape == result.local.shape == (2, 1, height, width)
    half, full = recorder.outputs
    for given, size in zip(recorder.inputs, recorder.sizes):
        torch.testing.assert_close(given, skimage_reference(image, size).float(), rtol=0, atol=1e-6)
    expected, trimap = official_hybrid_fusion(half.global_logits, full.local, (height, width), known_rule)
    assert torch.equal(result.trimap, trimap.float())  # the same pixels are known, exactly
    torch.testing.assert_close(result.alpha, expected.float(), rtol=0, atol=1e-5)
    assert torch.isfinite(result.alpha).all() and result.alpha.min() >= 0 and result.alpha.max() <= 1


@pytest.mark.parametrize("height,width", [(70, 45), (97, 33)])
def test_resize_on_odd_sizes(model, monkeypatch, height, width):
    recorder = PassRecorder(model)
    monkeypatch.setattr(model, "inference_maps", recorder)
    image = torch.rand(1, 3, height, width)
    alpha = model.infer_details(image, strategy="resize").alpha
    assert recorder.sizes == [working_size(height, width, 0.5, 1600)]
    torch.testing.assert_close(recorder.inputs[0], skimage_reference(image, recorder.sizes[0]).float(), rtol=0, atol=1e-6)
    half = recorder.outputs[0]
    fused = fuse(half.global_logits, half.local)
    torch.testing.assert_close(alpha, skimage_reference(fused, (height, width)).float(), rtol=0, atol=1e-5)


def test_max_side_caps_every_pass(model, monkeypatch):
    recorder = PassRecorder(model)
    monkeypatch.setattr(model, "inference_maps", recorder)
    model.infer_details(torch.rand(1, 3, 80, 200), strategy="hybrid", max_side=64)
    assert recorder.sizes == [(32, 64), (64, 64)]


def test_infer_goes_through_predict_with_the_configured_strategy():
    net = mattezoo.create_method("p3m_net", strategy="resize", max_side=64)
    assert net.strategy == "resize" and net.max_side == 64
    image = (torch.rand(41, 57, 3) * 255).to(torch.uint8).numpy()
    alpha = mattezoo.predict(net, image)
    assert alpha.shape == (41, 57)


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "image,message",
    [
        (torch.rand(1, 1, 64, 64), r"RGB image tensor \[B,3,H,W\]"),
        (torch.rand(3, 64, 64), r"RGB image tensor \[B,3,H,W\]"),
        (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
        (torch.rand(1, 3, 64, 64) * 255, r"\[0,1\]"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "float image"),
    ],
)
def test_infer_refuses_bad_images(model, image, message):
    with pytest.raises(InputError, match=message):
        model.infer(image)


def test_infer_refuses_a_trimap(model):
    with pytest.raises(InputError, match="trimap-free"):
        model.infer(torch.rand(1, 3, 64, 64), torch.full((1, 1, 64, 64), 0.5))


@pytest.mark.parametrize(
    "options,message",
    [
        ({"strategy": "tiled"}, "valid strategies: hybrid, resize"),
        ({"backbone": "r50"}, "valid backbones: r34, swin_t"),
        ({"tfi": "yes"}, "tfi must be True or False"),
        ({"max_side": 16}, "max_side must be an int >= 32"),
        ({"known_rule": "tolerant"}, "valid rules: official, solid"),
        ({"pooling": "cudnn"}, "valid backends: mattezoo, torch, reference"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        mattezoo.create_method("p3m_net", **options)


# --- Swin-T variant ------------------------------------------------------------------


def test_swin_t_matches_the_official_layout_and_size():
    keys, official_count = official_layout("p3m_net_swin_t_official_keys.json")
    derived = ("relative_position_index", "attn_mask")
    with torch.device("meta"):
        net = build_p3m_net(backbone="swin_t")
    assert layout_of(net) == [(k, s) for k, s in keys if not k.endswith(derived)]
    assert sum(p.numel() for p in net.parameters()) == official_count == 45_128_206


def test_swin_t_forward_backward_and_backbone_file(tmp_path):
    torch.manual_seed(0)
    net = build_p3m_net(backbone="swin_t", sbfi=False).train()
    image = torch.rand(2, 3, 32, 32)
    out = net.forward_intermediates(image)
    assert out.global_logits.shape == (2, 3, 32, 32) and out.local.shape == (2, 1, 32, 32)
    (out.local.mean() + out.global_logits.mean()).backward()
    grads = [p.grad for p in net.encoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # The official backbone file carries derived buffers and a classifier head: both are ignored.
    backbone = {k[len("encoder."):]: v.detach().clone() + 1 for k, v in net.state_dict().items() if k.startswith("encoder.")}
    backbone["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49, dtype=torch.long)
    backbone["head.weight"] = torch.zeros(1000, 768)
    torch.save(backbone, tmp_path / "swin.pth")
    net.load_backbone(tmp_path / "swin.pth")
    assert torch.equal(net.encoder.norm.weight, backbone["norm.weight"])


def test_swin_padding_is_masked_like_the_official_block():
    from mattezoo_methods.p3m.swin import shifted_window_mask

    # 9×9 map, window 7, no shift: padded to 14×14; real cells (row, col < 9) must
    # attend only to real cells of their window, padding only to its own kind.
    mask = shifted_window_mask(9, 9, (7, 7), (0, 0), "cpu", torch.float32)
    rows, cols = torch.meshgrid(torch.arange(14), torch.arange(14), indexing="ij")
    kind = ((rows >= 9).long() * 2 + (cols >= 9).long()).float()
    windows = kind.reshape(2, 7, 2, 7).permute(0, 2, 1, 3).reshape(4, 49)
    same = windows.unsqueeze(1) == windows.unsqueeze(2)
    assert mask.shape == (4, 49, 49)
    assert torch.equal(mask == 0, same) and torch.all(mask[~same] == -100)
    assert shifted_window_mask(14, 14, (7, 7), (0, 0), "cpu", torch.float32) is None


def test_pooling_backends_give_the_same_outputs(model):
    image = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    other = build_from(model, pooling="torch")
    assert {m.backend for m in other.modules() if hasattr(m, "backend")} == {"torch"}
    with torch.no_grad():
        ours = model.forward_intermediates(image)
        for backend in ("torch", "reference"):
            assert other.set_pooling(backend) is other and other.pool_backend == backend
            assert {m.pool_backend for m in other.modules() if hasattr(m, "pool_backend")} == {backend}
            out = other.forward_intermediates(image)
            for a, b in ((ours.global_logits, out.global_logits), (ours.local, out.local), (ours.fused, out.fused)):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
