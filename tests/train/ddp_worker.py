"""Run by test_distributed.py under torch.multiprocessing: one rank of a gloo training run."""

import os
import sys

import torch


def run(rank: int, world: int, port: int, out: str, steps: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from mattezoo.data import SyntheticP3M
    from mattezoo.train import TrainConfig, train_method

    ds = SyntheticP3M("train", n=4, size=64, seed=3)
    cfg = TrainConfig(method="basic", steps=steps, batch=4, size=64, lr=1e-3, seed=4, log_every=1, progress=False)
    result = train_method(cfg, [ds[i] for i in range(4)], "blurred", out)
    if rank == 0:
        torch.save(result.model.state_dict(), os.path.join(out, "final.pt"))


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
