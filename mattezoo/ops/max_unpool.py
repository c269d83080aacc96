"""``max_unpool2d``: the inverse of max-pooling with indices, deterministic on every device.

Semantics are those of ``torch.nn.functional.max_unpool2d`` on CPU: each input
value is written to the output position its index names (flat ``h * W + w``
within its channel plane), every other position is zero, and where several
inputs name one position the last of them in raster order wins. That happens
whenever pooling windows overlap (kernel 3, stride 2, padding 1 in P3M-Net).
"""

from __future__ import annotations

import torch

from ..errors import InputError
from . import reference
from ._checks import check_float, check_index_dtype, check_same_device, check_tensor, output_hw
from ._native import native_for, op_loaded, suggest_memory_format

__all__ = ["max_unpool2d"]


def max_unpool2d(input: torch.Tensor, indices: torch.Tensor, output_size) -> torch.Tensor:
    """Scatter ``input`` into a zero map of ``output_size`` at ``indices``.

    Parameters
    ----------
    input : Tensor[N, C, H, W] or Tensor[C, H, W]
        float16, bfloat16, float32 or float64; any memory layout.
    indices : Tensor, same shape as ``input``
        int64 or int32 flat positions ``y * out_w + x`` in ``[0, out_h * out_w)``,
        e.g. from :func:`mattezoo.ops.max_pool2d_with_indices`.
    output_size : (out_h, out_w), or the full pre-pool size such as ``x.shape``.

    Returns
    -------
    Tensor[N, C, out_h, out_w] (or [C, out_h, out_w]), channels_last when ``input`` is.
    Differentiable w.r.t. ``input``; the gradient is ``grad`` gathered at ``indices``.

    Raises
    ------
    InputError
        Wrong shape, dtype or device, or an index outside the output plane.
    """
    check_tensor("input", input, dims=(3, 4))
    check_tensor("indices", indices, dims=(3, 4))
    check_float("input", input)
    check_index_dtype("indices", indices.dtype)
    check_same_device(input=input, indices=indices)
    if indices.shape != input.shape:
        raise InputError(f"indices shape {tuple(indices.shape)} must equal input shape {tuple(input.shape)}")
    out_h, out_w = output_hw(output_size, input)
    squeeze = input.dim() == 3
    if squeeze:
        input, indices = input.unsqueeze(0), indices.unsqueeze(0)

    if native_for("max_unpool2d", input.device):
        try:
            out = torch.ops.mattezoo.max_unpool2d(input, indices, [out_h, out_w])
        except IndexError as exc:  # the kernel found an index outside the plane
            raise InputError(str(exc).split("\n")[0]) from None
    else:
        _check_index_range(indices, out_h * out_w)
        out = reference.max_unpool2d(input, indices, (out_h, out_w))
    return out.squeeze(0) if squeeze else out


def _check_index_range(indices: torch.Tensor, plane: int) -> None:
    if indices.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(indices))
    if low < 0 or high >= plane:
        bad = low if low < 0 else high
        raise InputError(f"max_unpool2d: index {bad} is outside the output plane; valid indices: 0 to {plane - 1}")


# Fake (meta) kernel and autograd for the compiled op, registered only when it exists.
if op_loaded("max_unpool2d"):

    @torch.library.register_fake("mattezoo::max_unpool2d")
    def _max_unpool2d_fake(input, indices, output_size):
        n, c = input.shape[:2]
        shape = (n, c, output_size[0], output_size[1])
        return torch.empty(shape, dtype=input.dtype, device=input.device, memory_format=suggest_memory_format(input))

    @torch.library.register_fake("mattezoo::_max_unpool2d_backward")
    def _max_unpool2d_backward_fake(grad, indices):
        fmt = suggest_memory_format(indices)
        return torch.empty(indices.shape, dtype=grad.dtype, device=grad.device, memory_format=fmt)

    def _setup_context(ctx, inputs, output):
        _, indices, _ = inputs
        ctx.save_for_backward(indices)

    def _backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return torch.ops.mattezoo._max_unpool2d_backward(grad, indices), None, None

    torch.library.register_autograd("mattezoo::max_unpool2d", _backward, setup_context=_setup_context)
