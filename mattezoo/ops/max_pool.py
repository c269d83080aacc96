"""``max_pool2d_with_indices``: max-pooling that also returns where each maximum came from.

Values and indices equal ``F.max_pool2d(..., return_indices=True)``: windows
are scanned in raster order, the first maximum wins a tie, and a NaN always
wins (the last NaN in the window when there are several). Indices are flat
``y * W + x`` positions within each channel plane of the input, in int64 or, to
halve their memory traffic, int32; :func:`mattezoo.ops.max_unpool2d` takes both.
The compiled CPU kernel is tuned for P3M-Net's kernel 3 / stride 2 / padding 1.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from . import reference
from ._checks import check_float, check_index_dtype, check_tensor, pair
from ._native import native_for, op_loaded, suggest_memory_format

__all__ = ["max_pool2d_with_indices"]


def max_pool2d_with_indices(
    input: torch.Tensor,
    kernel_size=3,
    stride=2,
    padding=1,
    *,
    index_dtype: torch.dtype = torch.int64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-pool ``input`` and return ``(values, indices)``.

    Parameters
    ----------
    input : Tensor[N, C, H, W] or Tensor[C, H, W]
        float16, bfloat16, float32 or float64; any memory layout.
    kernel_size, stride : int or (int, int), each >= 1.
    padding : int or (int, int), at most half the kernel size (as torch requires).
        Padded positions never win.
    index_dtype : torch.int64 (default, as torch) or torch.int32.

    Returns
    -------
    values : Tensor[N, C, out_h, out_w] with ``out = (in + 2 * padding - kernel) // stride + 1``;
        channels_last when ``input`` is. Differentiable w.r.t. ``input``: the
        gradient adds each output's gradient into the position it picked.
    indices : same shape, ``index_dtype``.
    """
    check_tensor("input", input, dims=(3, 4))
    check_float("input", input)
    check_index_dtype("index_dtype", index_dtype)
    kernel = pair("kernel_size", kernel_size, minimum=1)
    step = pair("stride", stride, minimum=1)
    pad = pair("padding", padding, minimum=0)
    for k, p in zip(kernel, pad):
        if 2 * p > k:
            raise InputError(f"padding {pad} must be at most half of kernel_size {kernel}")
    in_h, in_w = input.shape[-2:]
    if in_h + 2 * pad[0] < kernel[0] or in_w + 2 * pad[1] < kernel[1]:
        raise InputError(
            f"input of spatial size {(in_h, in_w)} plus padding {pad} is smaller than kernel_size {kernel}"
        )
    if index_dtype == torch.int32 and in_h * in_w > 2**31 - 1:
        raise InputError(f"a {in_h}x{in_w} plane has more positions than int32 indices can address; use torch.int64")
    squeeze = input.dim() == 3
    if squeeze:
        input = input.unsqueeze(0)

    if native_for("max_pool2d_with_indices", input.device):
        values, indices = torch.ops.mattezoo.max_pool2d_with_indices(input, kernel, step, pad, index_dtype)
    else:
        values, indices = reference.max_pool2d_with_indices(input, kernel, step, pad, index_dtype=index_dtype)
    if squeeze:
        values, indices = values.squeeze(0), indices.squeeze(0)
    return values, indices


if op_loaded("max_pool2d_with_indices"):

    @torch.library.register_fake("mattezoo::max_pool2d_with_indices")
    def _max_pool2d_fake(input, kernel_size, stride, padding, index_dtype):
        n, c, h, w = input.shape
        out_h = (h + 2 * padding[0] - kernel_size[0]) // stride[0] + 1
        out_w = (w + 2 * padding[1] - kernel_size[1]) // stride[1] + 1
        fmt = suggest_memory_format(input)
        shape = (n, c, out_h, out_w)
        values = torch.empty(shape, dtype=input.dtype, device=input.device, memory_format=fmt)
        indices = torch.empty(shape, dtype=index_dtype, device=input.device, memory_format=fmt)
        return values, indices

    @torch.library.register_fake("mattezoo::_max_pool2d_backward")
    def _max_pool2d_backward_fake(grad, indices, input_size, kernel_size, stride, padding):
        n, c = grad.shape[:2]
        shape = (n, c, input_size[0], input_size[1])
        return torch.empty(shape, dtype=grad.dtype, device=grad.device, memory_format=suggest_memory_format(indices))

    def _setup_context(ctx, inputs, output):
        input, kernel_size, stride, padding, _ = inputs
        _, indices = output
        ctx.save_for_backward(indices)
        ctx.geometry = (list(input.shape[-2:]), kernel_size, stride, padding)

    def _backward(ctx, grad_values, grad_indices):
        (indices,) = ctx.saved_tensors
        input_size, kernel_size, stride, padding = ctx.geometry
        grad = torch.ops.mattezoo._max_pool2d_backward(grad_values, indices, input_size, kernel_size, stride, padding)
        return grad, None, None, None, None

    torch.library.register_autograd("mattezoo::max_pool2d_with_indices", _backward, setup_context=_setup_context)
