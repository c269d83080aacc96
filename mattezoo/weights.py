"""Local weight files: finding, verifying and loading them safely.

Nothing is downloaded. A checkpoint is a path, or a weight tag that a
``mattezoo_resolve_weights`` hook or the ``MATTEZOO_WEIGHTS`` folder resolves.
Loading uses ``torch.load(weights_only=True)``, so a checkpoint can never run
code, and a state dict that does not fit the model is refused with the missing,
unexpected and mis-shaped keys listed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import CheckpointError, choices_hint
from .spec import MethodSpec

WEIGHTS_ENV = "MATTEZOO_WEIGHTS"
# Wrappers that training scripts put around a state dict, tried in this order.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "params")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(spec: MethodSpec, pretrained: str | os.PathLike, pm=None) -> Path:
    """Turn ``pretrained`` (a path or a weight tag of ``spec``) into a verified file path."""
    if isinstance(pretrained, os.PathLike) or (isinstance(pretrained, str) and pretrained not in spec.weights):
        path = Path(pretrained).expanduser()
        if path.is_file():
            return path
        tags = list(spec.weights)
        hint = choices_hint(str(pretrained), tags, f"weight tags of {spec.name}") if tags else f"{spec.name} has no weight tags."
        raise CheckpointError(f"weights {str(pretrained)!r} for {spec.name!r}: no such file. {hint}")
    tag = pretrained
    cfg = spec.weights[tag]
    if pm is None:
        from .plugins import get_plugin_manager

        pm = get_plugin_manager()
    found = pm.hook.mattezoo_resolve_weights(spec=spec, tag=tag, cfg=cfg)
    searched = []
    if found is None:
        folder = os.environ.get(WEIGHTS_ENV)
        if folder:
            candidate = Path(folder).expanduser() / cfg.file
            searched.append(str(candidate))
            if candidate.is_file():
                found = candidate
    if found is None:
        where = f"looked in {', '.join(searched)}" if searched else f"{WEIGHTS_ENV} is not set"
        raise CheckpointError(
            f"weights {spec.name}.{tag} ({cfg.file}) are not on this machine ({where}). mattezoo never downloads: "
            f"put the file in the folder named by {WEIGHTS_ENV}, or pass pretrained=<path>."
            + (f" It is published at {cfg.origin_url}." if cfg.origin_url else "")
        )
    path = Path(found)
    if not path.is_file():
        raise CheckpointError(f"a mattezoo_resolve_weights hook answered {str(path)!r} for {spec.name}.{tag}, which is not a file")
    if cfg.sha256:
        actual = sha256_of(path)
        if actual.lower() != cfg.sha256.lower():
            raise CheckpointError(f"{path}: sha256 is {actual}, expected {cfg.sha256} for {spec.name}.{tag}; the file is corrupt or a different release")
    return path


class InertObject:
    """What a checkpoint's foreign object becomes: its arguments and state are kept as data, nothing runs.

    Released checkpoints often carry training metadata next to the weights:
    numpy scalars (a best validation score), a framework's config or message
    classes (mmengine's ``meta``). ``weights_only=True`` refuses them. Rather
    than import and call what the file names, :func:`read_checkpoint` reads
    each such global as a subclass of this class, so the tensors load and the
    metadata stays inert.
    """

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {type(self).__qualname__}>"


def _inert_stand_ins(names: list[str]) -> list[tuple[type, str]]:
    return [(type(name.rpartition(".")[2] or "object", (InertObject,), {"__qualname__": name}), name) for name in names]


def read_checkpoint(path: str | os.PathLike, *, inert_foreign: bool = False):
    """Unpickle a checkpoint file with ``weights_only=True``: tensors and plain containers only.

    With ``inert_foreign``, objects of other types (a release's training
    metadata, such as numpy scalars or a framework's config classes) are read
    as inert :class:`InertObject` s instead of refusing the file; no code named
    by the file is imported or run either way. mattezoo's own training
    checkpoints never hold such objects, so the trainer reads them without it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = exc
    except Exception as exc:  # a corrupt file can fail anywhere inside the unpickler
        raise CheckpointError(f"checkpoint {str(path)!r} is not a readable torch checkpoint (truncated or corrupt?): {exc}") from None
    try:
        if not inert_foreign:
            raise refused
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        with torch.serialization.safe_globals(_inert_stand_ins(names)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was refused: it holds Python objects beyond tensors and plain containers, "
            f"and mattezoo loads with weights_only=True so a checkpoint cannot run code ({refused})"
        ) from None


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a flat ``{name: tensor}`` dict, never unpickling code.

    Accepts a plain state dict (such as the official P3M-Net release), the
    usual training wrappers (``{"state_dict": ...}``, ``{"model": ...}``, so
    also mattezoo's own training checkpoints) and DataParallel's ``module.``
    prefixes. Training metadata beside the weights is read as inert data
    (:func:`read_checkpoint`).
    """
    return _as_state_dict(read_checkpoint(path, inert_foreign=True), Path(path))


def _as_state_dict(obj, path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # unwrap nested wrappers such as {"model": {"state_dict": ...}}
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        kind = type(obj).__name__
        keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else ""
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {kind} ({keys}), not a model state dict of tensors")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _is_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def load_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """``model.load_state_dict(state, strict=True)`` with an error that lists what does not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:
        parts = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if items:
                shown = ", ".join(items[:10]) + (f", ... ({len(items) - 10} more)" if len(items) > 10 else "")
                parts.append(f"{len(items)} {title}: {shown}")
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
