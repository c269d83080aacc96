"""Two gloo processes on a global batch train the same model as one process on that batch."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mattezoo.data import SyntheticP3M
from mattezoo.train import TrainConfig, load_training_checkpoint, train_method

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_gloo_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp"
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(r), "2", str(port), str(out), str(STEPS)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    # Only rank 0 wrote: one checkpoint and one log, in rank 0's folder.
    assert sorted(f.name for f in out.iterdir()) == ["checkpoint.pt", "final.pt", "log.jsonl"]

    torch.set_num_threads(1)
    ds = SyntheticP3M("train", n=4, size=64, seed=3)
    cfg = TrainConfig(method="basic", steps=STEPS, batch=4, size=64, lr=1e-3, seed=4, log_every=1, progress=False)
    single = train_method(cfg, [ds[i] for i in range(4)], "blurred", tmp_path / "single")

    ddp_log = [r for r in load_lines(out / "log.jsonl") if r["event"] == "step"]
    assert [r["step"] for r in ddp_log] == [r["step"] for r in single.history] == list(range(1, STEPS + 1))
    for a, b in zip(ddp_log, single.history):
        for key in ("loss", "global", "local", "fusion", "composition"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (key, a, b)
    ddp_state = torch.load(out / "final.pt", weights_only=True)
    for name, value in single.model.state_dict().items():
        if "running" in name:
            torch.testing.assert_close(ddp_state[name], value, rtol=1e-4, atol=1e-5, msg=name)
        elif value.is_floating_point():
            torch.testing.assert_close(ddp_state[name], value, rtol=1e-3, atol=2e-4, msg=name)
    assert load_training_checkpoint(out / "checkpoint.pt")["step"] == STEPS


def load_lines(path):
    import json

    return [json.loads(line) for line in Path(path).read_text().splitlines()]
