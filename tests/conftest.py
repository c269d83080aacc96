"""Shared fixtures: devices, RNG hygiene, and plugin managers isolated from the environment."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mattezoo import plugins
from mattezoo.extension import has_cuda_ops


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available() and has_cuda_ops():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device and the CUDA build of mattezoo._C")
    for item in items:
        if "needs_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def prevent_leaking_rng():
    """Tests may seed freely; the global RNG states are restored afterwards."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    yield
    torch.set_rng_state(torch_state)
    np.random.set_state(np_state)
    random.setstate(py_state)


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Make the process-wide plugin manager rebuild on next use, and again afterwards.

    Use it in tests that change ``MATTEZOO_DISABLE_PLUGINS``, install packages or
    patch ``BUILTIN_PLUGINS``.
    """
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()
