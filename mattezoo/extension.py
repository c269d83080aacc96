"""Loading the compiled extension ``mattezoo._C``.

Importing ``mattezoo._C`` registers the ``torch.ops.mattezoo`` operators. When
it is missing (no compiler at install time) or disabled with
``MATTEZOO_DISABLE_EXT=1`` (handy for bisecting a wrong number), every op
wrapper in :mod:`mattezoo.ops` falls back to its pure-PyTorch reference.
"""

from __future__ import annotations

import functools
import os

import torch

from .errors import ExtensionError

DISABLE_ENV = "MATTEZOO_DISABLE_EXT"


@functools.cache
def _load() -> tuple[bool, str]:
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return False, f"disabled by {DISABLE_ENV}={os.environ[DISABLE_ENV]}"
    try:
        from . import _C  # noqa: F401  (import registers the ops)
    except ImportError as exc:
        return False, (
            f"mattezoo._C could not be imported ({exc}). Rebuild it with "
            "`pip install --no-build-isolation -e .` in an environment that has torch and a C++ compiler."
        )
    return True, ""


def has_ops() -> bool:
    """True when the compiled CPU ops are loaded."""
    return _load()[0]


def cuda_version() -> int:
    """CUDA runtime version the extension was built with, or -1 (CPU-only build or no extension)."""
    return int(torch.ops.mattezoo._cuda_version()) if has_ops() else -1


def has_cuda_ops() -> bool:
    """True when the extension has CUDA kernels and torch sees a GPU."""
    return cuda_version() >= 0 and torch.cuda.is_available()


def assert_has_ops() -> None:
    ok, why = _load()
    if not ok:
        raise ExtensionError(why)


def status() -> str:
    """One line for ``mattezoo list`` and bug reports."""
    ok, why = _load()
    if not ok:
        return f"extension: not loaded ({why})"
    version = cuda_version()
    cuda = f"CUDA kernels built for CUDA {version // 1000}.{version % 1000 // 10}" if version >= 0 else "CPU kernels only"
    return f"extension: loaded, {cuda}"
