"""The training engine end to end on tiny synthetic data: learning, exact resume, checkpoints, errors."""

import json

import pytest
import torch
from toy_plugins import TINY, TinyRecipePlugin, ToyPlugin

import mattezoo
from mattezoo.data import SyntheticP3M
from mattezoo.errors import CheckpointError, InvalidOptionError
from mattezoo.testing import registered_plugin
from mattezoo.train import TrainConfig, has_recipe, load_training_checkpoint, train_method, trainable_methods


@pytest.fixture(scope="module")
def tiny_set():
    # Rendered once: every test reads the same 4 portraits.
    ds = SyntheticP3M("train", n=4, size=96, seed=3)
    return [ds[i] for i in range(len(ds))]


@pytest.fixture
def toy_recipe():
    plugin = TinyRecipePlugin()
    with registered_plugin(ToyPlugin(TINY), "toys"), registered_plugin(plugin, "toy_recipes"):
        yield plugin


def _cfg(method="p3m_net", **kw):
    base = dict(method=method, steps=4, batch=2, size=64, lr=1e-4, seed=1, log_every=1, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_trainable_methods_are_the_learned_ones():
    names = trainable_methods()
    assert {"p3m_net", "basic"} <= set(names)
    assert not has_recipe("closed_form") and not has_recipe("knn")
    assert has_recipe("p3m_net.p3m10k")


def test_classical_method_cannot_be_trained(tiny_set):
    with pytest.raises(InvalidOptionError, match=r"'closed_form' \(classical\) has no training recipe.*trainable methods: .*p3m_net"):
        train_method(_cfg("closed_form"), tiny_set)


def test_tiny_net_learns_through_a_hook_recipe(tiny_set, toy_recipe, tmp_path):
    result = train_method(_cfg("tiny_net", steps=40, batch=4, lr=None, log_every=1), tiny_set, "normal", tmp_path)
    assert "tiny_net" in toy_recipe.asked
    losses = [r["alpha"] for r in result.history]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.85 * losses[0], losses
    assert not result.model.training and result.model.mattezoo_spec.name == "tiny_net"
    alpha = mattezoo.predict(result.model, tiny_set[0].normal)
    assert alpha.shape == tiny_set[0].alpha.shape


def test_p3m_net_loss_decreases_and_writes_its_files(tiny_set, tmp_path):
    result = train_method(_cfg(steps=12, batch=2, lr=5e-4), tiny_set, "blurred", tmp_path)
    losses = [r["loss"] for r in result.history]
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4, losses
    assert set(result.history[0]) >= {"loss", "global", "local", "fusion", "composition", "images_per_s", "stage"}
    records = [json.loads(line) for line in result.log.read_text().splitlines()]
    assert records[0]["event"] == "start" and records[-1]["event"] == "done"
    state = load_training_checkpoint(result.checkpoint)
    assert state["step"] == 12 and state["method"] == "p3m_net" and state["config"]["view"] == "blurred"
    # The training checkpoint loads as weights for inference too.
    again = mattezoo.create_method("p3m_net", pretrained=str(result.checkpoint))
    for a, b in zip(again.state_dict().values(), result.model.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_is_bit_exact(tiny_set, tmp_path):
    straight = train_method(_cfg(steps=4), tiny_set, "blurred", tmp_path / "a")
    first = train_method(_cfg(steps=2), tiny_set, "blurred", tmp_path / "b")
    assert first.steps == 2
    torch.manual_seed(999)  # the resumed run must not depend on the caller's RNG
    resumed = train_method(_cfg(steps=4), tiny_set, "blurred", tmp_path / "b")
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    a_opt = load_training_checkpoint(straight.checkpoint)["optimizer"]["state"]
    b_opt = load_training_checkpoint(resumed.checkpoint)["optimizer"]["state"]
    assert all(torch.equal(a_opt[k]["exp_avg"], b_opt[k]["exp_avg"]) for k in a_opt)
    # A finished run returns at once with the same weights.
    done = train_method(_cfg(steps=4), tiny_set, "blurred", tmp_path / "b")
    assert done.step_seconds is None and done.history == []
    assert all(torch.equal(a, b) for a, b in zip(done.model.state_dict().values(), resumed.model.state_dict().values()))


def test_resume_with_other_settings_is_refused(tiny_set, tmp_path):
    train_method(_cfg(steps=1), tiny_set, "blurred", tmp_path)
    with pytest.raises(CheckpointError, match=r"other settings \(lr: 0.0001 -> 0.001"):
        train_method(_cfg(steps=2, lr=1e-3), tiny_set, "blurred", tmp_path)
    with pytest.raises(CheckpointError, match=r"view: 'blurred' -> 'normal'"):
        train_method(_cfg(steps=2), tiny_set, "normal", tmp_path)
    fresh = train_method(_cfg(steps=1, lr=1e-3), tiny_set, "blurred", tmp_path, resume=False)
    assert load_training_checkpoint(fresh.checkpoint)["config"]["lr"] == 1e-3


def test_corrupt_and_foreign_checkpoints_are_refused(tiny_set, tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"format": "mattezoo-train-checkpoint", "model": {"w": torch.zeros(1000)}}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:300])  # truncated, as by a full disk
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        train_method(_cfg(steps=1), tiny_set, "blurred", tmp_path)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, ckpt)
    with pytest.raises(CheckpointError, match="not a mattezoo training checkpoint.*init weights"):
        train_method(_cfg(steps=1), tiny_set, "blurred", tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "mattezoo-train-checkpoint", "evil": Evil()}, ckpt)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        train_method(_cfg(steps=1), tiny_set, "blurred", tmp_path)


def test_init_from_plain_state_dict(tiny_set, tmp_path):
    model = mattezoo.create_method("basic")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "release.pth")
    result = train_method(_cfg("basic", steps=1, lr=1e-12), tiny_set, "blurred", tmp_path / "run", init=tmp_path / "release.pth")
    conv = result.model.state_dict()["resnet.conv1.weight"]
    assert torch.allclose(conv, torch.full_like(conv, 0.01), atol=1e-6)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="init weights .* does not fit .*missing keys"):
        train_method(_cfg("basic", steps=1), tiny_set, "blurred", tmp_path / "run2", init=tmp_path / "other.pth")


def test_bad_settings_name_the_valid_choices(tiny_set):
    with pytest.raises(InvalidOptionError, match="valid modes: auto, off, bf16, fp16"):
        _cfg(amp="fp8")
    with pytest.raises(InvalidOptionError, match="valid views"):
        _cfg(view="sideways")
    with pytest.raises(InvalidOptionError, match="recipe of 'p3m_net' has no option 'weights'"):
        train_method(_cfg(recipe_options={"weights": {}}), tiny_set)
    with pytest.raises(InvalidOptionError, match=r"unknown P3M loss weight\(s\) \['fusionn'\]"):
        train_method(_cfg(recipe_options={"loss_weights": {"fusionn": 1.0}}), tiny_set)


def test_worker_processes_change_nothing(tiny_set, toy_recipe, tmp_path):
    inline = train_method(_cfg("tiny_net", steps=3, batch=2, workers=0), tiny_set, "normal")
    workers = train_method(_cfg("tiny_net", steps=3, batch=2, workers=1), tiny_set, "normal")
    for (name, a), b in zip(inline.model.state_dict().items(), workers.model.state_dict().values()):
        assert torch.equal(a, b), name
