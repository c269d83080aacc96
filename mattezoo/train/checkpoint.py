"""Training checkpoints: written atomically, read without unpickling code.

A checkpoint holds everything an exact resume needs: the model, the optimiser
and gradient-scaler states, the RNG states and the step (the data position
follows from it, see batches.py), plus the run's configuration so that a
resume with different settings is refused instead of silently mixed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..weights import read_checkpoint

FORMAT = "mattezoo-train-checkpoint"
VERSION = 1
_REQUIRED = ("format", "version", "method", "step", "model", "optimizer", "config")


def save_atomic(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A crash mid-write leaves the previous checkpoint intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def is_training_checkpoint(obj) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == FORMAT


def load_training_checkpoint(path: str | os.PathLike) -> dict:
    """A mattezoo training checkpoint, checked for completeness, or a clear :class:`CheckpointError`."""
    obj = read_checkpoint(path)
    if not is_training_checkpoint(obj):
        what = f"a dict with keys {', '.join(map(str, list(obj)[:8]))}" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise CheckpointError(
            f"{str(path)!r} is not a mattezoo training checkpoint (it holds {what}). To start training from "
            f"plain model weights such as an official release, pass it as init weights (--init / init=) instead of resuming"
        )
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise CheckpointError(f"training checkpoint {str(path)!r} is incomplete: it lacks {', '.join(missing)}")
    if obj["version"] != VERSION:
        raise CheckpointError(f"training checkpoint {str(path)!r} has format version {obj['version']}; this mattezoo reads version {VERSION}")
    return obj
