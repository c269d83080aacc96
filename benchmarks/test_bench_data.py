"""Synthetic portrait generation and P3M-10k loading (pytest-benchmark; smoke-run by plain pytest).

``pytest benchmarks/test_bench_data.py --benchmark-enable`` times them; the
issue's bar is 50 synthetic samples per second at 256² on a 2-core CPU.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mattezoo.data import P3M10k, SyntheticP3M, write_sample


def _check(sample, size):
    assert sample.normal.shape == (size, size, 3) and sample.blurred.shape == (size, size, 3)
    a = sample.alpha[..., None].astype(np.float64)
    assert np.abs(sample.normal - (a * sample.fg + (1 - a) * sample.bg)).max() <= 0.5 + 1e-6


@pytest.mark.benchmark(group="data:synthetic_p3m")
@pytest.mark.parametrize("size", [128, 256])
def test_bench_synthetic_sample(benchmark, size):
    ds = SyntheticP3M("train", n=100_000, size=size, seed=0)
    _check(ds[0], size)
    counter = itertools.count()  # a new sample every call: nothing is cached
    benchmark(lambda: ds[next(counter)])


@pytest.mark.benchmark(group="data:synthetic_p3m")
def test_bench_p3m10k_read_256(benchmark, tmp_path):
    # The reference: reading a finished 256² sample (all seven PNGs) back from disk.
    ds = SyntheticP3M("P3M-500-P", n=8, size=256, seed=0)
    for i in range(len(ds)):
        write_sample(tmp_path, "P3M-500-P", ds[i])
    reader = P3M10k(tmp_path, "P3M-500-P")
    _check(reader[0], 256)
    counter = itertools.count()
    benchmark(lambda: reader[next(counter) % len(reader)])
