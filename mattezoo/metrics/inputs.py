"""Turning what users pass (numpy arrays or tensors, one image or a batch) into checked tensors.

Shape, dtype and device problems are found here. Value problems (NaN, alphas
outside [0,1], trimap values other than 0/128/255) are counted by the
compiled fused pass at no extra cost, or by :func:`value_problem` on the
fallback path; either way :func:`value_problem` words the error.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..images import TRIMAP_VALUES

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise InputError(f"{name} has numpy dtype {x.dtype}; a numeric array is expected")
        return torch.from_numpy(np.ascontiguousarray(x))
    raise InputError(f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}")


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 2:
        return x.unsqueeze(0)
    if x.dim() == 3:
        return x
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    raise InputError(f"{name} must be H×W, B×H×W or B×1×H×W, got shape {tuple(x.shape)}")


def _alpha(x, name: str) -> torch.Tensor:
    t = _as_batch(_as_tensor(x, name), name)
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 255.0
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.to(torch.float32)
    if t.dtype not in _FLOATS:
        raise InputError(f"{name} must be float in [0,1] (float16/32/64) or uint8 in 0..255, got dtype {t.dtype}")
    return t


def _trimap(x, name: str = "trimap") -> torch.Tensor:
    t = _as_batch(_as_tensor(x, name), name)
    if t.dtype == torch.uint8:
        return t
    if t.dtype not in _INTS:
        hint = " (for a float trimap with 0 / 0.5 / 1 use (trimap * 255).round().to(torch.uint8))" if t.is_floating_point() else ""
        raise InputError(f"{name} must be an integer array with values 0, 128, 255, got dtype {t.dtype}{hint}")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) > 255):
        raise InputError(f"{name} has values outside 0..255 ({int(t.min())}..{int(t.max())}); valid values are 0, 128, 255")
    return t.to(torch.uint8)


def _hw(t: torch.Tensor) -> str:
    return f"{t.shape[-2]}×{t.shape[-1]}" + (f" (batch of {t.shape[0]})" if t.shape[0] != 1 else "")


def prepare(pred, gt, trimap=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``[B,H,W]`` contiguous pred and gt of one float dtype, and a uint8 trimap or None."""
    p, g = _alpha(pred, "pred"), _alpha(gt, "gt")
    if p.shape != g.shape:
        raise InputError(f"pred is {_hw(p)} but gt is {_hw(g)}; they must match")
    if p.shape[-2] == 0 or p.shape[-1] == 0 or p.shape[0] == 0:
        raise InputError(f"pred and gt are empty (shape {tuple(p.shape)})")
    if p.device != g.device:
        raise InputError(f"pred is on {p.device} but gt is on {g.device}; put them on one device")
    dtype = torch.float64 if torch.float64 in (p.dtype, g.dtype) else torch.float32
    p, g = p.to(dtype).contiguous(), g.to(dtype).contiguous()
    t = None
    if trimap is not None:
        t = _trimap(trimap)
        if t.shape != p.shape:
            raise InputError(f"trimap is {_hw(t)} but pred is {_hw(p)}; they must match")
        if t.device != p.device:
            raise InputError(f"trimap is on {t.device} but pred is on {p.device}; put them on one device")
        t = t.contiguous()
    return p, g, t


def value_problem(pred: torch.Tensor, gt: torch.Tensor, trimap: torch.Tensor | None) -> str | None:
    """A sentence describing the first bad value found, or None when all values are valid."""
    for name, x in (("pred", pred), ("gt", gt)):
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            return f"{name} contains {int((~finite).sum())} NaN or infinite values"
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            return f"{name} must lie in [0,1], got values in [{lo:.4g}, {hi:.4g}]"
    if trimap is not None:
        valid = torch.zeros(256, dtype=torch.bool, device=trimap.device)
        valid[list(TRIMAP_VALUES)] = True
        bad = ~valid[trimap.long()]
        if bool(bad.any()):
            values, counts = torch.unique(trimap[bad], return_counts=True)
            shown = ", ".join(f"{int(v)} ({int(c)} px)" for v, c in list(zip(values.tolist(), counts.tolist()))[:6])
            return f"trimap has values other than 0 (background), 128 (unknown) and 255 (foreground): {shown}"
    return None


def check_values(pred: torch.Tensor, gt: torch.Tensor, trimap: torch.Tensor | None) -> None:
    problem = value_problem(pred, gt, trimap)
    if problem:
        raise InputError(problem)
