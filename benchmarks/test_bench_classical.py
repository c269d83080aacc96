"""Classical methods and foreground estimation (pytest-benchmark).

Small inputs so that the default smoke run (benchmarks disabled) stays quick;
``benchmarks/speed_classical.py`` measures the 800×600 ratios against pymatting.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "classical"))
from composites import make_composite, sad  # noqa: E402

from mattezoo.classical import estimate_foreground  # noqa: E402
from mattezoo_methods.closed_form import estimate_alpha_closed_form  # noqa: E402
from mattezoo_methods.knn import estimate_alpha_knn  # noqa: E402


@pytest.fixture(scope="module")
def composite():
    return make_composite(96, 128, seed=1)


@pytest.mark.benchmark(group="method:closed_form")
def test_closed_form(benchmark, composite):
    c = composite
    assert sad(estimate_alpha_closed_form(c.image, c.trimap), c.alpha) < 0.25
    benchmark(estimate_alpha_closed_form, c.image, c.trimap)


@pytest.mark.benchmark(group="method:knn")
def test_knn(benchmark, composite):
    c = composite
    assert sad(estimate_alpha_knn(c.image, c.trimap), c.alpha) < 0.5
    benchmark(estimate_alpha_knn, c.image, c.trimap)


@pytest.mark.benchmark(group="op:foreground")
def test_foreground(benchmark, composite):
    c = composite
    fg = estimate_foreground(c.image, c.alpha)
    weight = c.alpha[..., None]
    assert (np.abs(fg - c.foreground) * weight).sum() / (3 * weight.sum()) < 0.02
    benchmark(estimate_foreground, c.image, c.alpha)
