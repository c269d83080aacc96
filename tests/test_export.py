"""ONNX export: the graph that ``mattezoo export`` writes runs in onnxruntime and matches torch; bad requests are refused."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import mattezoo
from mattezoo.cli import main
from mattezoo.errors import InputError, MattezooError
from mattezoo.export import to_onnx

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="ONNX export tests need onnx, onnxscript and onnxruntime (pip install onnx onnxscript onnxruntime)",
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """p3m_net with known weights, exported once through the CLI with free batch/height/width."""
    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(3)
    model = mattezoo.create_method("p3m_net")
    checkpoint = folder / "weights.pth"
    torch.save(model.state_dict(), checkpoint)
    path = folder / "p3m_net.onnx"
    argv = ["export", "--method", "p3m_net", "--checkpoint", str(checkpoint), "--format", "onnx",
            "--out", str(path), "--size", "64", "64", "--dynamic"]
    return model, path, argv


@needs_onnx
@pytest.mark.slow
def test_p3m_net_onnx_round_trip(exported, capsys):
    import onnx
    import onnxruntime

    model, path, argv = exported
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime vs torch on a random 1×3×64×64 input" in printed and "alpha" in printed

    graph = onnx.load(str(path))
    ops = {node.op_type for node in graph.graph.node}
    assert all(node.domain in ("", "ai.onnx") for node in graph.graph.node)  # no custom mattezoo ops
    assert "MaxPool" in ops and "ScatterElements" in ops
    assert {a.s for n in graph.graph.node if n.op_type == "ScatterElements" for a in n.attribute if a.name == "reduction"} == {b"max"}

    # Another batch and size than the example, against the model as users run it (compiled pooling).
    image = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(11))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    alpha, local, logits = session.run(None, {"image": image.numpy()})
    with torch.no_grad():
        expected = model.forward_intermediates(image)
    assert model.pool_backend == "mattezoo"
    np.testing.assert_allclose(local, expected.local.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits, expected.global_logits.numpy(), rtol=1e-4, atol=1e-3)
    same_class = (logits.argmax(1) == expected.global_logits.argmax(1).numpy())[:, None]
    assert same_class.mean() > 0.999  # an argmax tie can flip by rounding, nothing else
    np.testing.assert_allclose(alpha[same_class], expected.fused.numpy()[same_class], rtol=0, atol=1e-4)


def test_export_refuses_bad_requests(tmp_path, monkeypatch, capsys):
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxscript"):
        with pytest.raises(InputError, match="multiples of 32"):
            to_onnx("p3m_net", tmp_path / "x.onnx", size=(64, 50))
        with pytest.raises(InputError, match="not a torch module"):
            to_onnx("closed_form", tmp_path / "x.onnx")
        with pytest.raises(InputError, match="does not exist"):
            to_onnx("basic", tmp_path / "missing" / "x.onnx", size=(64, 64))
    assert main(["export", "--method", "p3m_net", "--format", "tflite", "--out", str(tmp_path / "x")]) == 2
    assert "valid formats: onnx" in capsys.readouterr().err
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a))
    with pytest.raises(MattezooError, match="pip install onnx onnxscript onnxruntime"):
        to_onnx("p3m_net", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
