"""P3M-Net's max-pool and unpool shapes for a square input (batch 1 by default).

The encoder (ResNet-34 with a stride-1 stem and stride-1 stages) pools with
kernel 3 / stride 2 / padding 1 five times: on stem output e0 (64 ch, full
size), then 64, 64, 128 and 256 channels, each at half the previous size. The
local decoder unpools 256, 128, 64, 64 and 64 channels back with those
indices, from 1/32 up to full resolution (JizhiziLi/P3M core/network).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ENCODER_CHANNELS = (64, 64, 64, 128, 256)  # channels of the maps mp0 .. mp4 pool


def encoder_pool_shapes(size: int = 1024, batch: int = 1) -> list[tuple[int, int, int, int]]:
    """(N, C, H, W) of each pool's input, mp0 first."""
    shapes, h = [], size
    for c in ENCODER_CHANNELS:
        shapes.append((batch, c, h, h))
        h = (h + 2 - 3) // 2 + 1
    return shapes


def decoder_unpool_shapes(size: int = 1024, batch: int = 1) -> list[tuple[tuple[int, int, int, int], tuple[int, int]]]:
    """((N, C, h, w) of the unpool input, (H, W) output size), in decoder order (1/32 first)."""
    out = []
    for n, c, h, w in reversed(encoder_pool_shapes(size, batch)):
        out.append(((n, c, (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1), (h, w)))
    return out


def unpool_inputs(shape, out_hw, seed: int = 0, index_dtype=torch.int64, channels_last: bool = False):
    """A decoder map and real k3/s2/p1 pool indices (about 36% of them repeat)."""
    g = torch.Generator().manual_seed(seed)
    pre = torch.randn((shape[0], shape[1], *out_hw), generator=g)
    _, indices = F.max_pool2d(pre, 3, 2, 1, return_indices=True)
    x = torch.randn(shape, generator=g)
    indices = indices.to(index_dtype)
    if channels_last:
        x, indices = x.contiguous(memory_format=torch.channels_last), indices.contiguous(memory_format=torch.channels_last)
    return x, indices


def pool_input(shape, seed: int = 0, channels_last: bool = False):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def torch_unpool_one_thread(x, indices, out_hw):
    """torch's CPU unpool on one thread: raster-order "last write wins", deterministic.

    With more threads aten may split a channel plane, and repeated indices that
    straddle the split then resolve differently from run to run.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.ops.aten.max_unpool2d(x, indices.long(), list(out_hw))
    finally:
        torch.set_num_threads(threads)
