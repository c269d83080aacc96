"""mattezoo.ops.max_pool2d_with_indices against F.max_pool2d, a window-scan oracle and the reference path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mattezoo.errors import InputError
from mattezoo.extension import has_ops
from mattezoo.ops import max_pool2d_with_indices, max_unpool2d, reference
from mattezoo.testing import cpu_and_cuda

needs_ext = pytest.mark.skipif(not has_ops(), reason="mattezoo._C is not built")

SHAPES = [(1, 1, 1, 1), (1, 1, 2, 2), (1, 2, 3, 3), (2, 3, 9, 7), (1, 4, 16, 16), (2, 3, 33, 31), (1, 17, 6, 13)]
GEOMETRIES = [(3, 2, 1), (2, 2, 0), (3, 1, 1), (5, 3, 2), ((3, 2), (2, 1), (1, 0))]


def scan_oracle(x: torch.Tensor, k, s, p):
    """Window scan in raster order with aten's rule (x > best or x is NaN), in Python."""
    (kh, kw), (sh, sw), (ph, pw) = [(v, v) if isinstance(v, int) else v for v in (k, s, p)]
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    vals, idx = torch.empty(n, c, oh, ow, dtype=x.dtype), torch.empty(n, c, oh, ow, dtype=torch.long)
    xl = x.tolist()
    for b in range(n):
        for ch in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    best, best_i = -math.inf, None
                    for y in range(max(oy * sh - ph, 0), min(oy * sh - ph + kh, h)):
                        for xx in range(max(ox * sw - pw, 0), min(ox * sw - pw + kw, w)):
                            v = xl[b][ch][y][xx]
                            if best_i is None:
                                best_i = y * w + xx
                            if v > best or math.isnan(v):
                                best, best_i = v, y * w + xx
                    vals[b, ch, oy, ox], idx[b, ch, oy, ox] = best, best_i
    return vals, idx


def assert_same(got, expected):
    (gv, gi), (ev, ei) = got, expected
    assert gv.shape == ev.shape and gv.dtype == ev.dtype
    assert torch.equal(gv.isnan(), ev.isnan())
    assert torch.equal(gv.nan_to_num(0.0), ev.nan_to_num(0.0))
    assert torch.equal(gi.long(), ei.long())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_matches_torch_k3s2p1(shape, dtype, index_dtype):
    x = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(sum(shape)))
    got = max_pool2d_with_indices(x, index_dtype=index_dtype)
    assert got[1].dtype == index_dtype
    assert_same(got, F.max_pool2d(x, 3, 2, 1, return_indices=True))


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("shape", [(2, 3, 9, 7), (1, 2, 12, 17)])
def test_other_geometries(geometry, shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    assert_same(max_pool2d_with_indices(x, *geometry), F.max_pool2d(x, *geometry, return_indices=True))


def ties_and_nans(shape, seed):
    """Few distinct values (many ties), some NaNs (one window gets two) and -inf."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-2, 3, shape, generator=g).float()
    x[torch.rand(shape, generator=g) < 0.05] = float("nan")
    x[torch.rand(shape, generator=g) < 0.05] = float("-inf")
    x[..., 2, 2] = x[..., 2, 3] = float("nan")
    return x


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("geometry", [(3, 2, 1), (2, 2, 0)])
def test_ties_nan_and_inf_follow_torch(layout, geometry):
    x = ties_and_nans((2, 9, 11, 10), seed=7)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    got = max_pool2d_with_indices(x, *geometry)
    assert_same(got, F.max_pool2d(x.contiguous(), *geometry, return_indices=True))
    assert_same(got, scan_oracle(x.contiguous(), *geometry))


def test_all_minus_inf_window_picks_first_element():
    x = torch.full((1, 1, 5, 5), float("-inf"))
    assert_same(max_pool2d_with_indices(x), F.max_pool2d(x, 3, 2, 1, return_indices=True))


@pytest.mark.parametrize("layout", ["channels_last", "permuted", "sliced"])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_layouts(layout, index_dtype):
    x = torch.randn(2, 12, 15, 14, generator=torch.Generator().manual_seed(2))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "permuted":
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    else:
        x = x[:, ::2, 1:, :-1]
    values, indices = max_pool2d_with_indices(x, index_dtype=index_dtype)
    assert_same((values, indices), F.max_pool2d(x.contiguous(), 3, 2, 1, return_indices=True))
    if layout == "channels_last":
        assert values.is_contiguous(memory_format=torch.channels_last)
        assert indices.is_contiguous(memory_format=torch.channels_last)


def test_three_d_input():
    x = torch.randn(4, 9, 6)
    assert_same(max_pool2d_with_indices(x), F.max_pool2d(x, 3, 2, 1, return_indices=True))


@needs_ext
def test_extension_and_reference_paths_agree():
    x = ties_and_nans((2, 3, 13, 12), seed=1)
    native = torch.ops.mattezoo.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1], torch.int32)
    assert_same(native, reference.max_pool2d_with_indices(x, (3, 3), (2, 2), (1, 1), index_dtype=torch.int32))


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pool_then_unpool_round_trip(index_dtype, channels_last):
    x = torch.randn(2, 5, 17, 12, generator=torch.Generator().manual_seed(4))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    values, indices = max_pool2d_with_indices(x, index_dtype=index_dtype)
    ev, ei = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert torch.equal(max_unpool2d(values, indices, x.shape), F.max_unpool2d(ev, ei, 3, 2, 1, output_size=x.shape))


@pytest.mark.parametrize("geometry", [(3, 2, 1), (2, 2, 0), (3, 1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_backward_matches_torch(geometry, channels_last):
    # Overlapping windows pick the same input; the gradients must add up exactly as torch's do.
    x = torch.randint(0, 4, (2, 3, 11, 9)).double()  # many ties, so many shared picks
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    weight = torch.randn(F.max_pool2d(x, *geometry).shape, dtype=torch.float64)
    (max_pool2d_with_indices(x1, *geometry)[0] * weight).sum().backward()
    (F.max_pool2d(x2, *geometry) * weight).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_gradcheck(index_dtype):
    # Distinct values so the argmax is stable under gradcheck's perturbations.
    x = (torch.randperm(2 * 9 * 8, dtype=torch.float64).reshape(1, 2, 9, 8) / 10).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: max_pool2d_with_indices(t, index_dtype=index_dtype)[0], (x,))


@needs_ext
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck(channels_last):
    x = torch.randperm(2 * 3 * 7 * 6, dtype=torch.float32).reshape(2, 3, 7, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for index_dtype in (torch.int64, torch.int32):
        torch.library.opcheck(
            torch.ops.mattezoo.max_pool2d_with_indices, (x.requires_grad_(), [3, 3], [2, 2], [1, 1], index_dtype)
        )
    _, idx = torch.ops.mattezoo.max_pool2d_with_indices(x.detach(), [3, 3], [2, 2], [1, 1], torch.int64)
    grad = torch.randn(idx.shape)
    torch.library.opcheck(torch.ops.mattezoo._max_pool2d_backward, (grad, idx, [7, 6], [3, 3], [2, 2], [1, 1]))


@needs_ext
def test_torch_compile_pool_unpool():
    x = torch.randn(1, 2, 9, 8)

    def fn(t):
        values, indices = max_pool2d_with_indices(t, index_dtype=torch.int32)
        return max_unpool2d(values * 2, indices, t.shape[-2:])

    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    assert torch.equal(compiled(x), fn(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_size": 0}, "kernel_size must be >= 1"),
        ({"stride": (1, 0)}, "stride must be >= 1"),
        ({"padding": -1}, "padding must be >= 0"),
        ({"kernel_size": 3, "padding": 2}, "at most half"),
        ({"kernel_size": (1, 2, 3)}, "pair of ints"),
        ({"index_dtype": torch.float32}, "valid index dtypes"),
        ({"kernel_size": 9, "padding": 1}, "smaller than kernel_size"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        max_pool2d_with_indices(torch.randn(1, 2, 5, 5), **kwargs)


@pytest.mark.parametrize("bad, message", [(torch.ones(1, 2, 5, 5, dtype=torch.long), "valid dtypes"), (torch.ones(5, 5), "3-D or 4-D"), ([1.0], "torch.Tensor")])
def test_bad_input(bad, message):
    with pytest.raises(InputError, match=message):
        max_pool2d_with_indices(bad)


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_device_matches_cpu(device, dtype, channels_last, index_dtype):
    x = ties_and_nans((2, 7, 37, 30), seed=9).to(dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ev, ei = F.max_pool2d(x.float(), 3, 2, 1, return_indices=True)  # exact: max of values exactly representable
    got = max_pool2d_with_indices(x.to(device, memory_format=fmt), index_dtype=index_dtype)
    assert_same((got[0].cpu(), got[1].cpu()), (ev.to(dtype), ei))
    if device == "cuda":
        g = torch.randn(ev.shape, device=device).to(dtype)
        back = torch.ops.mattezoo._max_pool2d_backward(g, got[1], list(x.shape[-2:]), [3, 3], [2, 2], [1, 1])
        expected = reference.max_pool2d_backward(g.cpu().double(), ei, tuple(x.shape[-2:]))
        assert torch.allclose(back.cpu().double(), expected, rtol=1e-2, atol=1e-2)
