import hashlib

import pytest
import torch

import mattezoo
from mattezoo import MethodSpec, WeightsCfg
from mattezoo.errors import CheckpointError, InvalidOptionError
from mattezoo.testing import registered_plugin
from mattezoo.weights import load_into, load_state_dict, resolve_weights
from toy_plugins import ToyPlugin, build_tiny


@pytest.fixture
def trained(tmp_path):
    model = build_tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-2.0)
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module-prefix"])
def test_checkpoint_layouts_load(tmp_path, trained, wrap):
    model, _ = trained
    state = model.state_dict()
    obj = {
        "plain": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state, "optimizer": {}},
        "module-prefix": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    path = tmp_path / f"{wrap}.pth"
    torch.save(obj, path)
    fresh = build_tiny()
    load_into(fresh, load_state_dict(path))
    assert _same(fresh, model)


class WritesAFile:
    """Unpickling this would create ``path``: what a malicious checkpoint does."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_checkpoint_code_never_runs_and_metadata_stays_inert(tmp_path, trained):
    import numpy as np

    from mattezoo.weights import InertObject, read_checkpoint

    model, _ = trained
    marker = tmp_path / "pwned"
    path = tmp_path / "release.pth"
    meta = {"best_sad": np.float64(41.5), "error": CheckpointError("pickled object"), "payload": WritesAFile(marker)}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
    with pytest.raises(Exception):  # plain weights_only refuses the file...
        torch.load(path, weights_only=True)
    fresh = build_tiny()
    load_into(fresh, load_state_dict(path))  # ...mattezoo still gets the weights,
    assert _same(fresh, model)
    assert not marker.exists()  # runs nothing the file names,
    loaded = read_checkpoint(path, inert_foreign=True)["meta"]
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_checkpoint(path)  # without inert_foreign (training checkpoints): refused
    assert all(isinstance(v, InertObject) for v in loaded.values())  # and keeps the rest as inert data
    assert loaded["payload"].args == (str(marker), "w")


def test_a_checkpoint_of_foreign_objects_only_is_refused(tmp_path):
    path = tmp_path / "pickled_model.pth"
    torch.save({"model": WritesAFile(tmp_path / "x")}, path)
    with pytest.raises(CheckpointError, match="not a model state dict"):
        load_state_dict(path)
    assert not (tmp_path / "x").exists()


def test_corrupt_and_missing_checkpoints(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_state_dict(bad)
    with pytest.raises(CheckpointError, match="no such file"):
        load_state_dict(tmp_path / "absent.pth")
    foreign = tmp_path / "foreign.pth"
    torch.save({"epoch": 3, "lr": 0.1}, foreign)
    with pytest.raises(CheckpointError, match="not a model state dict"):
        load_state_dict(foreign)


def test_mismatched_checkpoint_lists_missing_unexpected_and_shapes(tmp_path):
    state = build_tiny().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["body.2.bias"]
    state["body.0.weight"] = torch.zeros(5, 3, 3, 3)
    with pytest.raises(CheckpointError) as info:
        load_into(build_tiny(), state, source="ckpt")
    message = str(info.value)
    assert "1 missing keys: body.2.bias" in message
    assert "1 unexpected keys: extra.weight" in message
    assert "body.0.weight: checkpoint (5, 3, 3, 3) vs model (4, 3, 3, 3)" in message


def test_pretrained_path_tag_and_sha256(tmp_path, trained, monkeypatch):
    model, path = trained
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = MethodSpec(
        name="tiny_w", family="trimap-free", factory="toy_plugins:build_tiny", summary="s", citation="c",
        weights={"good": WeightsCfg(file=path.name, sha256=digest), "bad": WeightsCfg(file=path.name, sha256="0" * 64)},
    )
    with registered_plugin(ToyPlugin(spec), "toys"):
        assert _same(mattezoo.create_method("tiny_w", pretrained=str(path)), model)
        monkeypatch.delenv("MATTEZOO_WEIGHTS", raising=False)
        with pytest.raises(CheckpointError, match="MATTEZOO_WEIGHTS is not set"):
            mattezoo.create_method("tiny_w.good")
        monkeypatch.setenv("MATTEZOO_WEIGHTS", str(tmp_path))
        assert _same(mattezoo.create_method("tiny_w.good"), model)
        with pytest.raises(CheckpointError, match="sha256 is .* expected 0000"):
            mattezoo.create_method("tiny_w.bad")
        with pytest.raises(CheckpointError, match="Did you mean 'good'"):
            mattezoo.create_method("tiny_w", pretrained="goodd")
        with pytest.raises(InvalidOptionError, match="names weights already"):
            mattezoo.create_method("tiny_w.good", pretrained=str(path))
        with pytest.raises(CheckpointError, match="no such file"):
            resolve_weights(mattezoo.get_method("tiny_w"), tmp_path / "nope.pth")
