"""Index-keeping max-pool and its unpool, as P3M-Net's encoder and matting decoder use them.

Both go through ``mattezoo.ops`` (compiled kernels when the extension is
built, a pure-PyTorch reference otherwise).
"""

from __future__ import annotations

import torch
from torch import nn

from mattezoo.ops import max_pool2d_with_indices, max_unpool2d


class MaxPoolWithIndices(nn.Module):
    """``max_pool2d`` that also returns the argmax indices for a later :func:`unpool`."""

    def __init__(self, kernel_size: int, stride: int, padding: int = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return max_pool2d_with_indices(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def unpool(x: torch.Tensor, indices: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Scatter ``x`` back to the spatial size of ``like`` (the tensor that was pooled)."""
    return max_unpool2d(x, indices, like.shape[-2:])
