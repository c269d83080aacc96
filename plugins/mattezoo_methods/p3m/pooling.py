"""Index-keeping max-pool and its unpool, as P3M-Net's encoder and matting decoder use them.

Three interchangeable implementations ("pooling backends"), all with the same
semantics (first maximum of a window wins; in the unpool, where overlapping
windows name one position, the last of them in raster order wins):

* ``"mattezoo"`` (default): :mod:`mattezoo.ops`, compiled kernels when the
  extension is built, the pure-PyTorch reference otherwise;
* ``"torch"``: ``F.max_pool2d(return_indices=True)`` / ``F.max_unpool2d``, the
  official implementation's ops (the baseline of the speed benchmarks). aten's
  CPU unpool may split a channel plane between threads, so where a repeated
  index straddles the split the winner can differ from the rule above;
* ``"reference"``: :mod:`mattezoo.ops.reference`, plain PyTorch ops only
  (``F.max_pool2d``, scatter-max, gather), so it exports to standard ONNX
  (MaxPool, ScatterElements with ``reduction="max"``, GatherElements, Where)
  with the "last write wins" rule defined by the ONNX spec rather than left
  to the runtime's scatter order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mattezoo.errors import InvalidOptionError
from mattezoo.ops import max_pool2d_with_indices, max_unpool2d, reference

POOLING_BACKENDS = ("mattezoo", "torch", "reference")


def check_pooling(backend: str) -> str:
    if backend not in POOLING_BACKENDS:
        raise InvalidOptionError(f"unknown pooling backend {backend!r}; valid backends: {', '.join(POOLING_BACKENDS)}")
    return backend


def pool(x: torch.Tensor, kernel_size: int, stride: int, padding: int, backend: str,
         index_dtype: torch.dtype = torch.int64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, indices)`` of a max-pool; indices are flat ``y * W + x`` positions per channel plane.

    ``index_dtype`` (int64 or int32) applies to the ``"mattezoo"`` backend; the
    others always give int64, as torch does.
    """
    if backend == "mattezoo":
        return max_pool2d_with_indices(x, kernel_size, stride, padding, index_dtype=index_dtype)
    return F.max_pool2d(x, kernel_size, stride, padding, return_indices=True)


def unpool(x: torch.Tensor, indices: torch.Tensor, like: torch.Tensor, backend: str = "mattezoo") -> torch.Tensor:
    """Scatter ``x`` back to the spatial size of ``like`` (the tensor that was pooled)."""
    size = tuple(like.shape[-2:])
    if backend == "mattezoo":
        return max_unpool2d(x, indices, size)
    if backend == "torch":
        # As the official decoder calls it (MaxUnpool2d(2, stride=2)); output_size fixes the size.
        return F.max_unpool2d(x, indices, kernel_size=2, stride=2, output_size=size)
    return reference.max_unpool2d(x, indices, size)


class MaxPoolWithIndices(nn.Module):
    """``max_pool2d`` that also returns the argmax indices for a later :func:`unpool`.

    ``backend`` is one of :data:`POOLING_BACKENDS`; models switch all their
    pools and unpools together (``P3MMattingModel.set_pooling``). The indices
    are int64 (as torch's) unless ``index_dtype`` is set to int32, which halves
    their memory traffic; fused inference passes do that.
    """

    def __init__(self, kernel_size: int, stride: int, padding: int = 0, backend: str = "mattezoo"):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.backend = check_pooling(backend)
        self.index_dtype = torch.int64

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index_dtype = self.index_dtype if x.shape[-2] * x.shape[-1] <= 2**31 - 1 else torch.int64
        return pool(x, self.kernel_size, self.stride, self.padding, self.backend, index_dtype)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, backend={self.backend}"
