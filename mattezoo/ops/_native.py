"""Whether a compiled ``torch.ops.mattezoo`` op can serve a tensor on its device."""

from __future__ import annotations

import torch

from ..extension import has_cuda_ops, has_ops


def op_loaded(name: str) -> bool:
    """True when ``mattezoo._C`` is loaded and defines ``torch.ops.mattezoo.<name>``."""
    return has_ops() and hasattr(torch.ops.mattezoo, name)


def native_for(name: str, device: torch.device) -> bool:
    """True when the compiled op ``name`` has a kernel for ``device`` (CPU, or CUDA in a CUDA build)."""
    if not op_loaded(name):
        return False
    if device.type == "cpu":
        return True
    return device.type == "cuda" and has_cuda_ops()


def suggest_memory_format(t: torch.Tensor) -> torch.memory_format:
    """The layout the kernels give their outputs: channels_last when ``t`` is laid out that way (as aten does)."""
    return torch._prims_common.suggest_memory_format(t)
