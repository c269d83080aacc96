"""Argument checks shared by the op wrappers.

Every check raises :class:`mattezoo.errors.InputError` naming the argument, what
was wrong and what is accepted, so callers never see a crash from deep inside
torch or the compiled kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import InputError

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INDEX_DTYPES = (torch.int32, torch.int64)


def _names(dtypes) -> str:
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def check_tensor(name: str, value, dims: tuple[int, ...]) -> None:
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() not in dims:
        shapes = " or ".join(f"{d}-D" for d in dims)
        raise InputError(f"{name} must be {shapes} ((N, C, H, W) or (C, H, W)), got shape {tuple(value.shape)}")


def check_float(name: str, value: torch.Tensor) -> None:
    if value.dtype not in FLOAT_DTYPES:
        raise InputError(f"{name} has dtype {value.dtype}; valid dtypes: {_names(FLOAT_DTYPES)}")


def check_index_dtype(name: str, dtype) -> None:
    if dtype not in INDEX_DTYPES:
        raise InputError(f"{name} has dtype {dtype}; valid index dtypes: {_names(INDEX_DTYPES)}")


def check_same_device(**tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{name} on {dev}" for name, dev in devices.items())
        raise InputError(f"tensors must be on the same device, got {listed}")


def pair(name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a (h, w) tuple."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        value = (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an int or a pair of ints, got {value!r}") from exc
    if h < minimum or w < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {(h, w)}")
    return h, w


def output_hw(output_size, input: torch.Tensor) -> tuple[int, int]:
    """(H, W) from ``output_size``: two ints, or a full size like ``x.shape`` of the pre-pool map.

    A full size must agree with ``input`` on its leading (batch, channel) dims.
    """
    if isinstance(output_size, torch.Tensor) or not isinstance(output_size, Sequence):
        raise InputError(f"output_size must be a sequence of ints (H, W), got {output_size!r}")
    sizes = list(output_size)
    if len(sizes) == input.dim():
        lead = tuple(int(s) for s in sizes[:-2])
        if lead != tuple(input.shape[:-2]):
            raise InputError(
                f"output_size {tuple(sizes)} does not match input shape {tuple(input.shape)} "
                "in its leading (batch, channel) dims; pass (H, W) or the full pre-pool size"
            )
        sizes = sizes[-2:]
    if len(sizes) != 2:
        raise InputError(
            f"output_size must have 2 entries (H, W) or {input.dim()} (the full pre-pool size), got {tuple(sizes)}"
        )
    return pair("output_size", sizes, minimum=1)
