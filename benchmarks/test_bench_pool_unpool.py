"""pytest-benchmark suites for mattezoo.ops.max_unpool2d and max_pool2d_with_indices vs torch.

Groups ``op:max_unpool2d`` and ``op:max_pool2d_with_indices``; each case checks
its result against torch before timing. Shapes are P3M-Net's for a 512² input
so a plain ``pytest`` smoke run stays quick; ``speed_pool_unpool.py`` prints the
1024² ratios.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mattezoo.ops import max_pool2d_with_indices, max_unpool2d

from pool_unpool_shapes import (
    decoder_unpool_shapes,
    encoder_pool_shapes,
    pool_input,
    torch_unpool_one_thread,
    unpool_inputs,
)

SIZE = 512


@pytest.mark.benchmark(group="op:max_unpool2d")
@pytest.mark.parametrize("impl", ["mattezoo", "torch"])
@pytest.mark.parametrize("case", decoder_unpool_shapes(SIZE), ids=lambda c: f"{c[0][1]}ch-{c[1][0]}")
def test_max_unpool2d(benchmark, impl, case):
    shape, out_hw = case
    x, indices = unpool_inputs(shape, out_hw)
    expected = torch_unpool_one_thread(x, indices, out_hw)
    if impl == "mattezoo":
        fn = lambda: max_unpool2d(x, indices, out_hw)  # noqa: E731
        assert torch.equal(fn(), expected)
    else:
        fn = lambda: F.max_unpool2d(x, indices, 3, 2, 1, output_size=out_hw)  # noqa: E731
        # Multi-threaded torch may pick another duplicate at a thread split; positions still agree.
        assert torch.equal(fn() != 0, expected != 0)
    benchmark(fn)


@pytest.mark.benchmark(group="op:max_pool2d_with_indices")
@pytest.mark.parametrize("impl", ["mattezoo", "mattezoo-int32", "torch"])
@pytest.mark.parametrize("shape", encoder_pool_shapes(SIZE), ids=lambda s: f"{s[1]}ch-{s[2]}")
def test_max_pool2d_with_indices(benchmark, impl, shape):
    x = pool_input(shape)
    ev, ei = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    if impl == "torch":
        fn = lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True)  # noqa: E731
    else:
        index_dtype = torch.int32 if impl.endswith("int32") else torch.int64
        fn = lambda: max_pool2d_with_indices(x, index_dtype=index_dtype)  # noqa: E731
    values, indices = fn()
    assert torch.equal(values, ev) and torch.equal(indices.long(), ei)
    benchmark(fn)
