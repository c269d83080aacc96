"""Pool and unpool outputs of at least 4 MiB, which the CPU kernels map on transparent huge pages.

Checks that those outputs hold the same values as torch's (and as the
ordinary allocator, MATTEZOO_HUGE_PAGES=0), in both layouts, and behave as
ordinary tensors: resizable, writable and freed with their last reference.
"""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F

from mattezoo.extension import has_ops
from mattezoo.ops import max_pool2d_with_indices, max_unpool2d

pytestmark = pytest.mark.skipif(not has_ops(), reason="mattezoo._C is not built")

# Pre-pool map whose unpool output is 1x4x640x520 float32 = 5.1 MB (> 4 MiB), odd pooled width.
PRE_SHAPE = (1, 4, 640, 520)


def one_thread(fn, *args):
    """torch's CPU unpool resolves repeated indices in raster order only on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("huge_pages", ["1", "0"])
def test_large_unpool_matches_torch(monkeypatch, channels_last, huge_pages):
    monkeypatch.setenv("MATTEZOO_HUGE_PAGES", huge_pages)
    g = torch.Generator().manual_seed(3)
    pre = torch.randn(PRE_SHAPE, generator=g)
    _, idx = F.max_pool2d(pre, 3, 2, 1, return_indices=True)
    x = torch.randn(idx.shape, generator=g)
    if channels_last:
        x, idx = x.contiguous(memory_format=torch.channels_last), idx.contiguous(memory_format=torch.channels_last)
    want = one_thread(torch.ops.aten.max_unpool2d, x.contiguous(), idx.contiguous(), list(PRE_SHAPE[-2:]))
    got = max_unpool2d(x, idx.int(), PRE_SHAPE[-2:])
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert torch.equal(got, want)


@pytest.mark.parametrize("huge_pages", ["1", "0"])
def test_large_pool_matches_torch(monkeypatch, huge_pages):
    monkeypatch.setenv("MATTEZOO_HUGE_PAGES", huge_pages)
    x = torch.randn((1, 4, 1300, 1030), generator=torch.Generator().manual_seed(4))  # outputs 5.4 / 10.7 MB
    want_v, want_i = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    got_v, got_i = max_pool2d_with_indices(x)
    assert torch.equal(got_v, want_v) and torch.equal(got_i, want_i)


def test_large_output_is_an_ordinary_tensor(monkeypatch):
    monkeypatch.setenv("MATTEZOO_HUGE_PAGES", "1")
    pre = torch.randn(PRE_SHAPE, generator=torch.Generator().manual_seed(5))
    values, idx = F.max_pool2d(pre, 3, 2, 1, return_indices=True)
    out = max_unpool2d(values, idx, PRE_SHAPE[-2:])
    assert torch.equal(out, F.max_unpool2d(values, idx, 3, 2, 1, output_size=PRE_SHAPE[-2:]))
    expected_sum = out.double().sum()
    out.add_(1.0)  # writable in place
    assert torch.isclose(out.double().sum(), expected_sum + out.numel())
    grown = out.view(-1).resize_(out.numel() * 2)  # its storage can grow, like any CPU tensor's
    grown[out.numel() :] = 0
    assert grown.numel() == out.numel() * 2 and float(grown[-1]) == 0.0
    del out, grown, values, idx
    gc.collect()


@pytest.mark.parametrize("cache_mb", ["512", "0"])
def test_reused_output_memory_holds_no_stale_values(monkeypatch, cache_mb):
    """A freed output's mapping is kept and handed to the next output of that size: every element is rewritten."""
    monkeypatch.setenv("MATTEZOO_HUGE_PAGES", "1")
    monkeypatch.setenv("MATTEZOO_OUTPUT_CACHE_MB", cache_mb)
    g = torch.Generator().manual_seed(6)
    for _ in range(3):
        pre = torch.rand(PRE_SHAPE, generator=g) + 1.0  # every pooled value >= 1: stale values would show
        values, idx = F.max_pool2d(pre, 3, 2, 1, return_indices=True)
        want = one_thread(torch.ops.aten.max_unpool2d, -values, idx, list(PRE_SHAPE[-2:]))
        got = max_unpool2d(-values, idx, PRE_SHAPE[-2:])
        assert torch.equal(got, want)
        got_v, got_i = max_pool2d_with_indices(pre)
        assert torch.equal(got_v, values) and torch.equal(got_i, idx)
        del got, got_v, got_i
