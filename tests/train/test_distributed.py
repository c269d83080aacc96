"""Two gloo processes on a global batch train the same model as one process on that batch.

The model is the toy conv net with BatchNorm: its gradients are smooth, so
agreement can be checked tightly. (A P3M-Net at initialisation is not such a
model: its max-pool indices, ReLU kinks and argmax fusion turn float-rounding
differences of the forward pass into gradient differences of a few percent.)
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import config, samples
from toy_plugins import TINY, TinyRecipePlugin, ToyPlugin

from mattezoo.testing import registered_plugin
from mattezoo.train import load_training_checkpoint, train_method

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_gloo_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp"
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(r), "2", str(port), str(out), str(STEPS)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    # Only rank 0 wrote: one checkpoint and one log.
    assert sorted(f.name for f in out.iterdir()) == ["checkpoint.pt", "final.pt", "log.jsonl"]
    assert _records(out / "log.jsonl")[0]["world"] == 2

    torch.set_num_threads(1)
    with registered_plugin(ToyPlugin(TINY), "toys"), registered_plugin(TinyRecipePlugin(), "toy_recipes"):
        single = train_method(config(STEPS), samples(), "blurred", tmp_path / "single")

    ddp_steps = [r for r in _records(out / "log.jsonl") if r["event"] == "step"]
    assert [r["step"] for r in ddp_steps] == [r["step"] for r in single.history] == list(range(1, STEPS + 1))
    for a, b in zip(ddp_steps, single.history):
        for key in ("loss", "alpha", "laplacian"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), (key, a, b)
    ddp_state = torch.load(out / "final.pt", weights_only=True)
    single_state = single.model.state_dict()
    assert any("running_mean" in k for k in single_state)  # BatchNorm statistics are compared too
    for name, value in single_state.items():
        if value.is_floating_point():
            torch.testing.assert_close(ddp_state[name], value, rtol=1e-4, atol=1e-6, msg=name)
    assert load_training_checkpoint(out / "checkpoint.pt")["step"] == STEPS
