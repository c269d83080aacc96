"""mattezoo.ops.max_unpool2d against F.max_unpool2d (CPU), a raster-order loop oracle and the reference path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mattezoo.errors import InputError
from mattezoo.extension import has_ops
from mattezoo.ops import max_unpool2d, reference
from mattezoo.testing import cpu_and_cuda

needs_ext = pytest.mark.skipif(not has_ops(), reason="mattezoo._C is not built")

# (N, C, H, W) of the pre-pool map: odd and even sizes, tiny planes, and more channels than a vector.
SHAPES = [(1, 1, 1, 1), (1, 2, 2, 3), (2, 3, 9, 7), (1, 4, 16, 16), (2, 5, 33, 31), (1, 19, 12, 5), (3, 2, 4, 27)]


def loop_oracle(x: torch.Tensor, idx: torch.Tensor, out_hw) -> torch.Tensor:
    """Plain raster-order scatter, per channel plane: what "last write wins" means."""
    xs, ids = x.double().numpy(), idx.long().numpy()
    n, c, h, w = xs.shape
    out = np.zeros((n, c, out_hw[0] * out_hw[1]))
    for b in range(n):
        for ch in range(c):
            for p in range(h * w):
                out[b, ch, ids[b, ch].flat[p]] = xs[b, ch].flat[p]
    return torch.from_numpy(out.reshape(n, c, *out_hw)).to(x.dtype)


def pooled(shape, kernel=3, stride=2, padding=1, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    pre = torch.randn(shape, generator=g, dtype=dtype)
    values, indices = F.max_pool2d(pre, kernel, stride, padding, return_indices=True)
    decoder = torch.randn(values.shape, generator=g, dtype=dtype)  # unpool a different map, as a decoder does
    return decoder, indices, tuple(shape[-2:])


def torch_unpool(x, idx, out_hw):
    """aten's CPU unpool on one thread.

    With several threads aten may split a channel plane between them, and then
    "last write wins" no longer holds where indices repeat across the split:
    its result varies run to run. On one thread it writes in raster order.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.ops.aten.max_unpool2d(x, idx.long(), list(out_hw))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_overlapping_pool_indices_match_torch(shape, dtype, index_dtype):
    x, idx, out_hw = pooled(shape, dtype=dtype)
    got = max_unpool2d(x, idx.to(index_dtype), out_hw)
    expected = torch_unpool(x, idx, out_hw)
    assert got.dtype == dtype and got.shape == expected.shape
    assert torch.equal(got, expected)
    assert torch.equal(got, loop_oracle(x, idx, out_hw))


@pytest.mark.parametrize("shape", SHAPES[1:])
def test_k2_pool_indices_and_larger_output(shape):
    x, idx, out_hw = pooled(shape, kernel=2, stride=2, padding=0, seed=1)
    for size in (out_hw, (out_hw[0] + 1, out_hw[1] + 2)):  # also an output larger than the pool's input
        assert torch.equal(max_unpool2d(x, idx, size), torch_unpool(x, idx, size))


def test_duplicates_resolve_last_write_wins():
    # Peaks at odd rows and columns: up to four overlapping windows pick each peak.
    pre = torch.zeros(1, 2, 7, 9)
    pre[..., 1::2, 1::2] = 1
    _, idx = F.max_pool2d(pre, 3, 2, 1, return_indices=True)
    x = torch.arange(idx.numel(), dtype=torch.float32).reshape(idx.shape) + 1
    assert idx[0, 0].unique().numel() < idx[0, 0].numel()  # repeats exist
    assert torch.equal(max_unpool2d(x, idx, (7, 9)), loop_oracle(x, idx, (7, 9)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_arbitrary_indices_match_torch(seed, index_dtype):
    """Indices not from a pool (random, repeating, far outside any window) take the exact general path."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = 2, 3, 1 + seed * 3, 5 + seed
    out_hw = (2 * h + seed, 3 * w)
    x = torch.randn(n, c, h, w, generator=g)
    idx = torch.randint(0, out_hw[0] * out_hw[1], (n, c, h, w), generator=g)
    idx[..., 0, 0] = idx[..., -1, -1]  # at least one repeat per plane
    got = max_unpool2d(x, idx.to(index_dtype), out_hw)
    assert torch.equal(got, torch_unpool(x, idx, out_hw))
    assert torch.equal(got, loop_oracle(x, idx, out_hw))


def test_one_plane_off_window_others_on():
    x, idx, out_hw = pooled((2, 4, 10, 10))
    idx = idx.clone()
    idx[1, 2, 0, 0] = out_hw[0] * out_hw[1] - 1  # far from its window
    assert torch.equal(max_unpool2d(x, idx, out_hw), torch_unpool(x, idx, out_hw))


def test_nan_and_inf_values_pass_through():
    x, idx, out_hw = pooled((1, 3, 11, 8))
    x[0, 1, 2, 2] = float("nan")
    x[0, 2, 0, 1] = float("-inf")
    got = max_unpool2d(x, idx, out_hw)
    assert torch.equal(got.isnan(), torch_unpool(x, idx, out_hw).isnan())
    assert torch.allclose(got, torch_unpool(x, idx, out_hw), equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["channels_last", "permuted", "sliced"])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_layouts(layout, index_dtype):
    x, idx, out_hw = pooled((2, 11, 13, 10))
    idx = idx.to(index_dtype)
    if layout == "channels_last":
        x, idx = x.contiguous(memory_format=torch.channels_last), idx.contiguous(memory_format=torch.channels_last)
    elif layout == "permuted":
        x, idx = x.transpose(2, 3).contiguous().transpose(2, 3), idx.transpose(2, 3).contiguous().transpose(2, 3)
    else:
        x, idx = torch.cat([x, x], 1)[:, ::2], torch.cat([idx, idx], 1)[:, ::2]
    got = max_unpool2d(x, idx, out_hw)
    expected = torch_unpool(x.contiguous(), idx.contiguous(), out_hw)
    assert torch.equal(got, expected)
    if layout == "channels_last":
        assert got.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_arbitrary_indices():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 9, 4, 6, generator=g).contiguous(memory_format=torch.channels_last)
    idx = torch.randint(0, 8 * 12, x.shape, generator=g).contiguous(memory_format=torch.channels_last)
    assert torch.equal(max_unpool2d(x, idx, (8, 12)), loop_oracle(x.contiguous(), idx.contiguous(), (8, 12)))


def test_three_d_input_and_full_output_size():
    pre = torch.randn(4, 9, 6)
    v, idx = F.max_pool2d(pre, 3, 2, 1, return_indices=True)
    got = max_unpool2d(v, idx, pre.shape)
    assert got.shape == pre.shape
    assert torch.equal(got, torch_unpool(v[None], idx[None], (9, 6))[0])


@needs_ext
def test_extension_and_reference_paths_agree():
    x, idx, out_hw = pooled((2, 3, 15, 12))
    native = torch.ops.mattezoo.max_unpool2d(x, idx, list(out_hw))
    assert torch.equal(native, reference.max_unpool2d(x, idx, out_hw))
    assert torch.equal(native, reference.unpool_last_write_wins(x, idx, out_hw))


def test_backward_matches_torch_autograd_with_duplicates():
    x, idx, out_hw = pooled((2, 3, 9, 11), dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    weight = torch.randn(2, 3, *out_hw, dtype=torch.float64)
    (max_unpool2d(x1, idx, out_hw) * weight).sum().backward()
    (F.max_unpool2d(x2, idx, 3, 2, 1, output_size=out_hw) * weight).sum().backward()
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_gradcheck(index_dtype):
    # Non-overlapping windows: no duplicates, so numerical and analytical gradients agree.
    x, idx, out_hw = pooled((1, 2, 6, 7), kernel=2, stride=2, padding=0, dtype=torch.float64)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: max_unpool2d(t, idx.to(index_dtype), out_hw), (x,))


@needs_ext
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck(channels_last):
    x, idx, out_hw = pooled((2, 3, 7, 6))
    if channels_last:
        x, idx = x.contiguous(memory_format=torch.channels_last), idx.contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(torch.ops.mattezoo.max_unpool2d, (x.requires_grad_(), idx, list(out_hw)))
    grad = torch.randn(2, 3, *out_hw)
    torch.library.opcheck(torch.ops.mattezoo._max_unpool2d_backward, (grad, idx))


@needs_ext
def test_torch_compile():
    x, idx, out_hw = pooled((1, 2, 6, 5))

    def fn(t, i):
        return max_unpool2d(t, i, out_hw) * 2 + 1

    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    assert torch.equal(compiled(x, idx), fn(x, idx))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x, i: (x, i + 10_000, (9, 7)), "outside the output plane"),
        (lambda x, i: (x, i - 10_000, (9, 7)), "outside the output plane"),
        (lambda x, i: (x, i.float(), (9, 7)), "valid index dtypes"),
        (lambda x, i: (x, i.to(torch.int16), (9, 7)), "valid index dtypes"),
        (lambda x, i: (x.long(), i, (9, 7)), "valid dtypes"),
        (lambda x, i: (x, i[:, :1], (9, 7)), "must equal input shape"),
        (lambda x, i: (x, i.to("meta"), (9, 7)), "same device"),
        (lambda x, i: (x[0, 0, 0], i[0, 0, 0], (9, 7)), "must be 3-D or 4-D"),
        (lambda x, i: (x, i, (9,)), "output_size must have 2 entries"),
        (lambda x, i: (x, i, (0, 7)), "must be >= 1"),
        (lambda x, i: (x, i, (1, 5, 9, 7)), "leading (batch, channel)"),
        (lambda x, i: (x, i, (3, 3)), "outside the output plane"),
        (lambda x, i: (x, i.numpy(), (9, 7)), "must be a torch.Tensor"),
    ],
)
def test_bad_input(make, message):
    x, idx, _ = pooled((2, 3, 9, 7))
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        max_unpool2d(*make(x, idx))


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_device_matches_cpu(device, dtype, channels_last):
    x, idx, out_hw = pooled((2, 7, 37, 30))
    x = x.to(dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    expected = torch_unpool(x.float(), idx, out_hw).to(dtype)
    got = max_unpool2d(x.to(device, memory_format=fmt), idx.to(device, memory_format=fmt), out_hw)
    assert torch.equal(got.cpu(), expected)
    again = max_unpool2d(x.to(device, memory_format=fmt), idx.to(device, memory_format=fmt), out_hw)
    assert torch.equal(got, again)  # deterministic run to run
    if device == "cuda":
        g = torch.randn_like(got)
        back = torch.ops.mattezoo._max_unpool2d_backward(g, idx.to(device, memory_format=fmt))
        assert torch.equal(back.cpu(), reference.max_unpool2d_backward(g.cpu(), idx))
