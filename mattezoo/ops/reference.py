"""Pure-PyTorch versions of the compiled ops, with the same signatures.

They are the fallback when ``mattezoo._C`` is missing or disabled
(``MATTEZOO_DISABLE_EXT=1``) and an oracle for the tests. Arguments are assumed
checked by the public wrappers in :mod:`mattezoo.ops`; inputs are 4-D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def max_unpool2d(input: torch.Tensor, indices: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """``F.max_unpool2d`` with "last write wins" in raster order, deterministic on every device.

    aten's kernels are not used: its CUDA kernel makes no promise where indices
    repeat, and its CPU kernel may split a channel plane between threads, after
    which repeats that straddle the split resolve differently run to run.
    """
    return _UnpoolLastWriteWins.apply(input, indices, tuple(output_size))


class _UnpoolLastWriteWins(torch.autograd.Function):
    """Gives the reference torch's gradient: every input, overwritten or not, gets ``grad`` at its index."""

    @staticmethod
    def forward(ctx, input, indices, output_size):
        ctx.save_for_backward(indices)
        return unpool_last_write_wins(input, indices, output_size)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return max_unpool2d_backward(grad, indices), None, None


def unpool_last_write_wins(input: torch.Tensor, indices: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """Deterministic unpool from scatter-amax of raster positions, then a gather."""
    n, c, h, w = input.shape
    out_h, out_w = output_size
    flat_idx = indices.reshape(n, c, h * w).long()
    raster = torch.arange(h * w, device=input.device).expand(n, c, h * w)
    winner = torch.full((n, c, out_h * out_w), -1, dtype=torch.long, device=input.device)
    winner.scatter_reduce_(2, flat_idx, raster, reduce="amax", include_self=True)
    picked = input.reshape(n, c, h * w).gather(2, winner.clamp(min=0))
    out = torch.where(winner >= 0, picked, torch.zeros((), dtype=input.dtype, device=input.device))
    out = out.reshape(n, c, out_h, out_w)
    if input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def max_unpool2d_backward(grad: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Gradient of :func:`max_unpool2d` w.r.t. its input: ``grad`` gathered at ``indices``.

    Like torch's derivative, every input gets the gradient of the position it
    targets, including an input whose value a later duplicate overwrote.
    """
    n, c, h, w = indices.shape
    flat = grad.reshape(n, c, -1).gather(2, indices.reshape(n, c, h * w).long())
    return flat.reshape(n, c, h, w)


def max_pool2d_with_indices(
    input: torch.Tensor,
    kernel_size: tuple[int, int] = (3, 3),
    stride: tuple[int, int] = (2, 2),
    padding: tuple[int, int] = (1, 1),
    *,
    index_dtype: torch.dtype = torch.int64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``F.max_pool2d(..., return_indices=True)``; indices converted to ``index_dtype``."""
    values, indices = F.max_pool2d(input, kernel_size, stride, padding, return_indices=True)
    return values, indices.to(index_dtype)


def max_pool2d_backward(grad: torch.Tensor, indices: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """Gradient of max-pooling w.r.t. its input: ``grad`` summed into ``indices``.

    Overlapping windows can pick the same input; their gradients add up.
    """
    n, c = grad.shape[:2]
    in_h, in_w = input_size
    out = torch.zeros((n, c, in_h * in_w), dtype=grad.dtype, device=grad.device)
    out.scatter_add_(2, indices.reshape(n, c, -1).long(), grad.reshape(n, c, -1))
    return out.reshape(n, c, in_h, in_w)
