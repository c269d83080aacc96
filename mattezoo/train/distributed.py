"""Multi-process training under ``torchrun``: process groups, rank-0 writing, synchronised BatchNorm.

``torchrun --nproc_per_node=N -m mattezoo train ...`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; the engine then joins a process group
(NCCL on GPUs, gloo on CPU) and wraps the model in DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import InvalidOptionError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def from_env() -> DistInfo:
    """The launch as ``torchrun`` describes it in the environment (a single process without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise InvalidOptionError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers: {exc}") from None
    return DistInfo(rank, world, local)


def setup(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group (when ``info.world > 1``); returns this rank's device."""
    if not info.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != info.world:
        raise InvalidOptionError(f"WORLD_SIZE={info.world} but the process group has {dist.get_world_size()} processes")
    return device


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        _BatchNormSync.group = None
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


class _GlobalSum(torch.autograd.Function):
    """Sum a tensor over the ranks of ``group``; each rank's input gradient is the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _BatchNormSync:
    """The process group of the BatchNorm collectives, and the chain that orders them.

    A collective in a backward pass must run in the same order on every rank,
    but autograd is free to order independent branches differently. Each
    layer's statistics therefore take a zero-weighted term of the previous
    layer's, so backward reaches them strictly in reverse forward order. The
    group is separate from DistributedDataParallel's, whose bucket all-reduces
    interleave with these.
    """

    group = None
    last: torch.Tensor | None = None


@contextlib.contextmanager
def batchnorm_step():
    """Scope of one forward/backward: the BatchNorm chain starts afresh."""
    _BatchNormSync.last = None
    try:
        yield
    finally:
        _BatchNormSync.last = None


class SyncedBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose training statistics cover the global batch, on any backend.

    torch's ``SyncBatchNorm`` runs only on GPUs; this one all-reduces the
    per-channel count and sum, then the centred sum of squares (differentiably), so gloo on CPU
    trains the same model as one process on the whole batch. Outside a process
    group, or in eval mode, it is a plain BatchNorm2d. Forward passes must run
    inside :func:`batchnorm_step` (the trainer does this).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        # Two collectives, mean first and then the centred sum of squares: the one-pass
        # E[x²] - E[x]² loses float32 precision (and gradient accuracy) when |mean| >> std.
        xf = x.float()
        c = x.shape[1]
        count = torch.full((1,), xf.numel() / c, dtype=torch.float32, device=x.device)
        first = torch.cat([count, xf.sum(dim=(0, 2, 3))])
        if _BatchNormSync.last is not None:
            first = first + 0.0 * _BatchNormSync.last.sum()
        first = _GlobalSum.apply(first, _BatchNormSync.group)
        n, mean = first[0], first[1:] / first[0]
        centred = xf - mean.reshape(1, c, 1, 1)
        sq = _GlobalSum.apply((centred * centred).sum(dim=(0, 2, 3)), _BatchNormSync.group)
        _BatchNormSync.last = sq
        var = sq / n
        if self.track_running_stats:
            with torch.no_grad():
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.num_batches_tracked += 1
                unbiased = var * (n / (n - 1.0).clamp_min(1.0))
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.to(self.running_mean.dtype))
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased.to(self.running_var.dtype))
        shape = (1, c, 1, 1)
        y = centred * torch.rsqrt(var.reshape(shape) + self.eps)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Synchronise every BatchNorm2d: torch's SyncBatchNorm on GPUs, :class:`SyncedBatchNorm` elsewhere.

    Converted in place (the module objects change, parameters and buffers are
    the same tensors), so aliases of a submodule stay aliases.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if _BatchNormSync.group is None:
        _BatchNormSync.group = dist.new_group(backend="gloo")
    for bn in module.modules():
        if type(bn) is nn.BatchNorm2d:
            bn.__class__ = SyncedBatchNorm
    return module
