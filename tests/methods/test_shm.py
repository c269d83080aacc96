"""SHM: structure and size, each network against a functional re-statement, fusion, loading, inference, training.

The authors released no code or weights, so there is no official fixture:
the T-Net is checked against torchvision's dilated ResNet-50 plus PSPNet's
head written out with functional ops, the M-Net against the paper's layer
list written out the same way, and the fusion against the paper's formula
evaluated pixel by pixel. The conformance run over every registered method
(tests/test_conformance.py) covers predict, odd sizes, batches and backward.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import mattezoo
from mattezoo.errors import CheckpointError, InputError, InvalidOptionError
from mattezoo.weights import load_into, load_state_dict
from mattezoo_methods.shm.inference import pad_to_multiple, working_size
from mattezoo_methods.shm.model import IMAGENET_MEAN, IMAGENET_STD, SHM, build_shm, fuse, trimap_one_hot
from mattezoo_methods.shm.recipe import GAMMA, LAMBDA_T, SHM_LR, shm_recipe

from adam_steps import adam_steps
from disc_batches import disc_batch

SIZE = 32  # the smallest side the M-Net's four poolings and the T-Net's 1/8 features make interesting


def seeded_bn_stats(model: torch.nn.Module, seed: int = 7) -> None:
    """Non-trivial BatchNorm statistics and affine terms, so eval-mode passes test the normalisation too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.75 + 0.5 * torch.rand(n, generator=gen))
                m.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=gen))
                m.bias.copy_(0.05 * torch.randn(n, generator=gen))


@pytest.fixture(scope="module")
def model() -> SHM:
    torch.manual_seed(0)
    net = mattezoo.create_method("shm")
    seeded_bn_stats(net)
    return net.eval()


def uninitialised() -> SHM:
    """An SHM whose parameters are allocated but not initialised: for loading tests (initialising 72M costs seconds)."""
    with torch.device("meta"):
        net = SHM()
    return net.to_empty(device="cpu")


def image_batch(batch: int = 1, height: int = SIZE, width: int = SIZE, seed: int = 3) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def normalise(image: torch.Tensor) -> torch.Tensor:
    return (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


# --- structure --------------------------------------------------------------------------


def conv_params(cin, cout, k, bias=True, bn=True):
    return cin * cout * k * k + (cout if bias else 0) + (2 * cout if bn else 0)


def test_parameter_count_is_the_one_derived_from_the_paper():
    with torch.device("meta"):
        net = build_shm()
        resnet = torchvision.models.resnet50(weights=None)
    trunk = sum(p.numel() for n, p in resnet.named_parameters() if not n.startswith("fc."))
    assert trunk == 23_508_032
    psp = 4 * conv_params(2048, 512, 1, bias=False) + conv_params(4096, 512, 3, bias=False) + conv_params(512, 3, 1, bn=False)
    widths = [(6, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
              (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    encoder = sum(conv_params(a, b, 3) for a, b in widths)
    decoder = sum(conv_params(a, b, 5) for a, b in [(512, 512), (512, 256), (256, 128), (128, 64), (64, 64)])
    decoder += conv_params(64, 1, 5, bn=False)
    assert sum(p.numel() for p in net.t_net.parameters()) == trunk + psp == 46_583_363
    assert sum(p.numel() for p in net.m_net.parameters()) == encoder + decoder == 25_686_337
    assert sum(p.numel() for p in net.parameters()) == 72_269_700
    convs = [m for m in net.m_net.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in net.m_net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 13 + 6 and len(bns) == len(convs) - 1  # BN after every conv but the prediction
    assert convs[0].in_channels == 6 and convs[-1].out_channels == 1


def test_t_net_backbone_has_torchvisions_resnet50_layout_without_the_classifier():
    with torch.device("meta"):
        net = build_shm()
        resnet = torchvision.models.resnet50(weights=None)
    ours = [(k, tuple(v.shape)) for k, v in net.t_net.backbone.state_dict().items()]
    theirs = [(k, tuple(v.shape)) for k, v in resnet.state_dict().items() if not k.startswith("fc.")]
    assert ours == theirs
    assert all(k.startswith(("t_net.", "m_net.")) for k in net.state_dict())


# --- each network against a re-statement ------------------------------------------------


def reference_t_net(net: SHM, image: torch.Tensor) -> torch.Tensor:
    """torchvision's dilated ResNet-50 with our weights, then PSPNet's head with functional ops."""
    resnet = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True]).eval()
    state = dict(net.t_net.backbone.state_dict())
    state.update({k: v for k, v in resnet.state_dict().items() if k.startswith("fc.")})
    resnet.load_state_dict(state, strict=True)
    trunk = torch.nn.Sequential(*list(resnet.children())[:-2])
    feats = trunk(normalise(image))
    assert feats.shape[-2:] == (image.shape[-2] // 8, image.shape[-1] // 8)

    def bn_relu(x, bn):
        return F.relu(F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))

    branches = [feats]
    for stage, bins in zip(net.t_net.ppm.stages, (1, 2, 3, 6)):
        pooled = bn_relu(F.conv2d(F.adaptive_avg_pool2d(feats, bins), stage[1].weight), stage[2])
        branches.append(F.interpolate(pooled, size=feats.shape[-2:], mode="bilinear", align_corners=False))
    head = bn_relu(F.conv2d(torch.cat(branches, 1), net.t_net.head[0].weight, padding=1), net.t_net.head[1])
    logits = F.conv2d(head, net.t_net.classifier.weight, net.t_net.classifier.bias)
    return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


def test_t_net_alone_is_dilated_resnet50_with_pspnet_head(model):
    image = image_batch()
    with torch.no_grad():
        ours = model.segment(image)
        expected = reference_t_net(model, image)
    assert ours.shape == (1, 3, SIZE, SIZE)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


ENCODER = [["conv1_1", "conv1_2"], ["conv2_1", "conv2_2"], ["conv3_1", "conv3_2", "conv3_3"],
           ["conv4_1", "conv4_2", "conv4_3"], ["conv5_1", "conv5_2", "conv5_3"]]
DECODER = ["deconv5_1", "deconv4_1", "deconv3_1", "deconv2_1", "deconv1_1"]


def reference_m_net(net: SHM, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """The paper's M-Net written out: 13 convs / 4 pools, 6 convs / 4 unpoolings, BN after each conv, sigmoid."""

    def block(x, name):
        conv, bn = getattr(net.m_net, name)[0], getattr(net.m_net, name)[1]
        x = F.conv2d(x, conv.weight, conv.bias, padding=conv.kernel_size[0] // 2)
        return F.relu(F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))

    x = torch.cat((normalise(image), probs), 1)
    indices = []
    for stage_no, stage in enumerate(ENCODER):
        for name in stage:
            x = block(x, name)
        if stage_no < 4:
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(idx)
    x = block(x, DECODER[0])
    for name, idx in zip(DECODER[1:], reversed(indices)):
        x = block(F.max_unpool2d(x, idx, 2, 2), name)
    pred = net.m_net.alpha_pred
    return torch.sigmoid(F.conv2d(x, pred.weight, pred.bias, padding=2))


def test_m_net_alone_with_a_given_trimap(model):
    image = image_batch(1, seed=5)
    trimap = torch.zeros(1, 1, SIZE, SIZE)
    trimap[:, :, 8:24, 8:24] = 0.5
    trimap[:, :, 12:20, 12:20] = 1.0
    probs = trimap_one_hot(trimap)
    assert torch.equal(probs.argmax(1, keepdim=True).float() * 0.5, trimap) and torch.equal(probs.sum(1), torch.ones(1, SIZE, SIZE))
    with torch.no_grad():
        raw = model.matte(image, probs)
        expected = reference_m_net(model, image, probs)
    torch.testing.assert_close(raw, expected, rtol=1e-4, atol=1e-5)
    # With a hard trimap the fused alpha is the trimap on its known regions, exactly.
    fused = fuse(probs, raw)
    assert torch.equal(fused[trimap == 1], torch.ones_like(fused[trimap == 1]))
    assert torch.equal(fused[trimap == 0], torch.zeros_like(fused[trimap == 0]))
    assert torch.equal(fused[trimap == 0.5], raw[trimap == 0.5])


def test_end_to_end_pass_is_the_fusion_of_both_networks(model):
    image = image_batch(1, seed=9)
    with torch.no_grad():
        out = model.forward_intermediates(image)
        logits = model.segment(image)
        raw = model.matte(image, torch.softmax(logits, 1))
    torch.testing.assert_close(out.trimap_logits, logits, rtol=0, atol=0)
    torch.testing.assert_close(out.raw_alpha, raw, rtol=0, atol=0)
    # The paper's eq. 2 pixel by pixel: alpha_p = F_s + U_s * alpha_r, with softmax over (bg, unknown, fg).
    z = out.trimap_logits.double().numpy()
    expected = np.empty(out.fused.shape)
    for n, y, x in np.ndindex(1, SIZE, SIZE):
        e = np.exp(z[n, :, y, x] - z[n, :, y, x].max())
        bg, unknown, fg = e / e.sum()
        expected[n, 0, y, x] = fg + unknown * float(out.raw_alpha[n, 0, y, x])
    np.testing.assert_allclose(out.fused.numpy(), expected, rtol=0, atol=1e-6)
    assert set(out.trimap.unique().tolist()) <= {0.0, 0.5, 1.0}
    assert 0.0 <= float(out.fused.min()) and float(out.fused.max()) <= 1.0


# --- weights ----------------------------------------------------------------------------


def seeded_state_like(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else torch.zeros_like(v)
            for k, v in module.state_dict().items()}


def test_torchvision_resnet50_file_loads_into_the_t_net_backbone(tmp_path):
    with torch.device("meta"):
        resnet = torchvision.models.resnet50(weights=None)
    state = seeded_state_like(resnet.to_empty(device="cpu"), 1)
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(state, path)
    net = mattezoo.create_method("shm", backbone_weights=str(path))  # the factory option users pass
    loaded = net.t_net.backbone.state_dict()
    assert set(loaded) == set(state) - {"fc.weight", "fc.bias"}
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    del net
    target = uninitialised()
    torch.save({k: v for k, v in state.items() if k != "layer4.2.bn3.running_var"}, path)
    with pytest.raises(CheckpointError, match=r"missing keys: layer4\.2\.bn3\.running_var"):
        target.load_backbone(path)
    torch.save({**state, "layer5.0.conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match=r"unexpected keys: layer5\.0\.conv1\.weight"):
        target.load_backbone(path)
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    with pytest.raises(CheckpointError, match="no fc.weight, fc.bias"):
        target.load_backbone(path)


def test_torchvision_vgg16_file_initialises_the_m_net_encoder(tmp_path):
    with torch.device("meta"):
        vgg = torchvision.models.vgg16(weights=None)
    # The classifier (120M of VGG's 138M parameters) is optional in the file and set aside: leave it out here.
    state = seeded_state_like(vgg.features.to_empty(device="cpu"), 2)
    state = {f"features.{k}": v for k, v in state.items()}
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    net = uninitialised()
    net.load_vgg16(path)
    first = net.m_net.conv1_1[0].weight
    assert torch.equal(first[:, :3], state["features.0.weight"]) and not first[:, 3:].any()
    assert torch.equal(net.m_net.conv5_3[0].weight, state["features.28.weight"])
    assert torch.equal(net.m_net.conv3_1[0].bias, state["features.10.bias"])
    torch.save({k: v for k, v in state.items() if k != "features.14.bias"}, path)
    with pytest.raises(CheckpointError, match=r"missing \['features\.14\.bias'\]"):
        net.load_vgg16(path)


def test_trained_checkpoint_loads_strictly(tmp_path, model):
    path = tmp_path / "shm.pth"
    torch.save({"state_dict": model.state_dict()}, path)  # mattezoo's training checkpoints wrap the state dict
    loaded = mattezoo.create_method("shm", pretrained=str(path))
    assert not loaded.training
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    del loaded
    torch.save({k: v for k, v in model.state_dict().items() if k != "m_net.alpha_pred.bias"}, path)
    with pytest.raises(CheckpointError, match=r"missing keys: m_net\.alpha_pred\.bias"):
        load_into(uninitialised(), load_state_dict(path))


# --- inference --------------------------------------------------------------------------


def test_infer_pads_odd_sizes_and_shrinks_large_images(model):
    image = image_batch(1, 13, 29, seed=12)
    with torch.no_grad():
        alpha = model.infer(image)
        padded = F.pad(image, (0, 3, 0, 3), mode="reflect")
        assert torch.equal(alpha, model(padded)[..., :13, :29].clamp(0, 1))
        # The trimap for trimap-based methods is the T-Net's alone, on the same padded input.
        trimap = model.infer_trimap(image)
        assert torch.equal(trimap, model.segment(padded)[..., :13, :29].argmax(1, keepdim=True) * 0.5)
        # Above max_side: shrink (antialiased), pad, run, crop, resize back.
        big = image_batch(1, 40, 70, seed=13)
        assert working_size(40, 70, 32) == (18, 32) and working_size(30, 32, 32) == (30, 32)
        details = model.infer_details(big, max_side=32)
        small = F.interpolate(big, size=(18, 32), mode="bilinear", align_corners=False, antialias=True)
        fused = model(pad_to_multiple(small, 16))[..., :18, :32]
        expected = F.interpolate(fused, size=(40, 70), mode="bilinear", align_corners=False).clamp(0, 1)
    assert details.fused.shape == details.raw_alpha.shape == (1, 1, 40, 70)
    assert details.trimap_logits.shape == (1, 3, 40, 70)
    torch.testing.assert_close(details.fused, expected, rtol=0, atol=1e-6)


def test_tiny_images_use_replicate_padding(model):
    pixels = (image_batch(1, 5, 9, seed=14)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        alpha = model.infer_details(image)
        padded = F.pad(image, (0, 7, 0, 11), mode="replicate")
        assert torch.equal(alpha.fused, model(padded)[..., :5, :9].clamp(0, 1))
    assert mattezoo.get_method("shm").provides_trimap
    expected = (alpha.trimap[0, 0] * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(mattezoo.predict_trimap(model, pixels), expected)


def test_bad_input_is_refused_with_clear_errors(model):
    image = image_batch()
    with pytest.raises(InputError, match="trimap-free"):
        model.infer(image, torch.zeros(1, 1, SIZE, SIZE))
    with pytest.raises(InputError, match="NaN"):
        model.infer(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(InputError, match=r"\[B,3,H,W\]"):
        model.infer(torch.rand(1, 4, 16, 16))
    with pytest.raises(InputError, match="multiples of 16"):
        model(torch.rand(1, 3, 24, 32))
    with pytest.raises(InputError, match=r"trimap probabilities"):
        model.matte(image, torch.rand(1, 1, SIZE, SIZE))
    with pytest.raises(InvalidOptionError, match="max_side"):
        build_shm(max_side=8)
    with pytest.raises(InputError, match="trimap-free"):
        mattezoo.predict(model, np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), np.uint8))
    model.train()
    try:
        with pytest.raises(InputError, match="at least 2 images"):
            model(image)
    finally:
        model.eval()


# --- spec and training ------------------------------------------------------------------


def test_spec_carries_the_p3m_paper_rows():
    spec = mattezoo.get_method("shm")
    assert spec.family == "trimap-free" and spec.input_multiple == 16 and not spec.needs_trimap
    assert spec.paper("P3M Table 3", protocol="N:N")[0].metrics == {"SAD": 17.13, "MSE": 0.0075, "MAD": 0.0099}
    assert spec.paper("P3M Table 3", protocol="B:N")[0].metrics["SAD"] == 24.33
    np_row = spec.paper("P3M Table 4", test_set="P3M-500-NP")[0].metrics
    assert np_row["SAD"] == 20.77 and np_row["CONN"] == 17.09 and np_row["SAD-T"] == 9.14
    assert len(spec.paper_results) == 6


def synthetic_batch(size: int = SIZE, batch: int = 2) -> dict[str, torch.Tensor]:
    return disc_batch(size, batch, ramp=3)


def reference_prediction_loss(fused, batch):
    """Paper eq. 3-5: 0.5 * mean sqrt((a_p - a_g)^2 + eps^2) + 0.5 * per-pixel sum over RGB of the composite error."""
    eps2 = 1e-12
    l_alpha = torch.sqrt((fused - batch["alpha"]) ** 2 + eps2).mean()
    comp = fused * batch["fg"] + (1 - fused) * batch["bg"]
    l_comp = torch.sqrt((comp - batch["image"]) ** 2 + eps2).sum(1).mean()
    return 0.5 * l_alpha + 0.5 * l_comp


def test_recipe_stages_losses_and_trainable_parts(model):
    recipe = shm_recipe()
    assert [s.name for s in recipe.stages] == ["t-net", "m-net", "end-to-end"] and recipe.lr == SHM_LR == 1e-5
    assert (GAMMA, LAMBDA_T) == (0.5, 0.01) and recipe.stage_bounds(120) == [(0, 40), (40, 80), (80, 120)]
    t_stage, m_stage, e2e = recipe.stages
    assert {id(p) for p in t_stage.trainable(model)} == {id(p) for p in model.t_net.parameters()}
    assert {id(p) for p in m_stage.trainable(model)} == {id(p) for p in model.m_net.parameters()}
    assert e2e.trainable is None
    batch = synthetic_batch(batch=1)
    classes = torch.round(batch["trimap"][:, 0] * 2).long()
    with torch.no_grad():
        out = model.forward_intermediates(batch["image"])
        ce = F.cross_entropy(out.trimap_logits, classes)
        assert float(t_stage.loss(model, batch)["loss"]) == pytest.approx(float(ce), rel=1e-5)
        gt = trimap_one_hot(batch["trimap"])
        gt_fused = gt[:, 2:] + gt[:, 1:2] * model.matte(batch["image"], gt)
        expected_m = reference_prediction_loss(gt_fused, batch)
        assert float(m_stage.loss(model, batch)["loss"]) == pytest.approx(float(expected_m), rel=1e-5)
        expected = reference_prediction_loss(out.fused, batch) + 0.01 * ce
        assert float(e2e.loss(model, batch)["loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_recipe_options_are_checked():
    assert [s.name for s in shm_recipe(phases=["end-to-end"]).stages] == ["end-to-end"]
    with pytest.raises(InvalidOptionError, match="valid: t-net, m-net, end-to-end"):
        shm_recipe(phases=["t_net"])
    with pytest.raises(InvalidOptionError, match="in the order"):
        shm_recipe(phases=["end-to-end", "t-net"])
    with pytest.raises(InvalidOptionError, match="gamma"):
        shm_recipe(gamma=1.5)


def test_loss_decreases_over_a_few_steps(model):
    net = uninitialised()  # a trainable copy of the seeded model, without initialising 72M parameters first
    net.load_state_dict(model.state_dict())
    net.mean.copy_(model.mean)
    net.std.copy_(model.std)
    net.train()
    stage = shm_recipe().stages[-1]  # end to end: both networks, L_p + 0.01 L_t
    batch = synthetic_batch()
    losses = [float(h["loss"]) for h in adam_steps(stage.loss, net, batch, 3, lr=1e-4)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses
