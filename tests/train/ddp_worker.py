"""One rank of a gloo training run, started by test_distributed.py (as torchrun would start it)."""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for toy_plugins


def run(rank: int, world: int, port: int, out: str, steps: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from toy_plugins import TINY, TinyRecipePlugin, ToyPlugin

    from mattezoo.testing import registered_plugin
    from mattezoo.train import train_method

    with registered_plugin(ToyPlugin(TINY), "toys"), registered_plugin(TinyRecipePlugin(), "toy_recipes"):
        result = train_method(config(steps), samples(), "blurred", out)
    if rank == 0:
        torch.save(result.model.state_dict(), os.path.join(out, "final.pt"))


def config(steps: int):
    from mattezoo.train import TrainConfig

    return TrainConfig(method="tiny_net", options={"width": 6, "batchnorm": True}, steps=steps, batch=4, size=48,
                       lr=1e-2, seed=4, log_every=1, progress=False)


def samples():
    from mattezoo.data import SyntheticP3M

    ds = SyntheticP3M("train", n=6, size=64, seed=3)
    return [ds[i] for i in range(len(ds))]


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
