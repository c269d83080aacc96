"""The settings of a training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import InvalidOptionError

AMP_MODES = ("auto", "off", "bf16", "fp16")
# Settings a resumed run must share with the run that wrote the checkpoint
# (``steps`` may grow: a finished run can be extended).
RESUME_KEYS = ("method", "options", "recipe_options", "batch", "size", "crop_sizes", "lr", "seed", "view", "grad_clip")


@dataclass
class TrainConfig:
    """How to train one method.

    :param method: a registered method with a training recipe.
    :param options: options of the method's factory (as for ``create_method``).
    :param recipe_options: options of the method's recipe (e.g. ``loss_weights``).
    :param steps: optimiser steps in all (over every stage of the recipe).
    :param batch: global batch size (split over processes under torchrun).
    :param size: side of the square training crops (the seed: 512).
    :param crop_sizes: crop sides before resizing to ``size``; default: the
        seed's {512, 768, 1024} scaled by ``size / 512``.
    :param lr: Adam's fixed learning rate; default: the recipe's (the paper's).
    :param seed: seeds the model initialisation and every data choice.
    :param device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    :param amp: ``"auto"`` (bf16 autocast on GPUs that support it, fp32 on CPU),
        ``"off"``, ``"bf16"`` or ``"fp16"`` (with a gradient scaler).
    :param channels_last: train in the channels-last memory format.
    :param grad_clip: clip the global gradient norm to this value (``None``: off).
    :param checkpoint_every: write a checkpoint every this many steps
        (0: only at the end); the last step always writes one.
    :param log_every: log a line (JSONL and progress bar) every this many steps.
    :param workers: data-loading worker processes (0: in the training process).
    :param sync_bn: under torchrun, compute BatchNorm statistics over the global batch.
    :param progress: show a progress bar.
    :param view: the training images: ``"blurred"`` or ``"normal"``.
    """

    method: str
    options: dict = field(default_factory=dict)
    recipe_options: dict = field(default_factory=dict)
    steps: int = 1000
    batch: int = 8
    size: int = 512
    crop_sizes: tuple[int, ...] | None = None
    lr: float | None = None
    seed: int = 0
    device: str = "cpu"
    amp: str = "auto"
    channels_last: bool = False
    grad_clip: float | None = None
    checkpoint_every: int = 0
    log_every: int = 10
    workers: int = 0
    sync_bn: bool = True
    progress: bool = True
    view: str = "blurred"

    def __post_init__(self):
        for name in ("steps", "batch", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidOptionError(f"{name} must be a positive integer, got {value!r}")
        for name in ("checkpoint_every", "log_every", "workers", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidOptionError(f"{name} must be a non-negative integer, got {value!r}")
        if self.amp not in AMP_MODES:
            raise InvalidOptionError(f"unknown amp mode {self.amp!r}; valid modes: {', '.join(AMP_MODES)}")
        if self.lr is not None and not self.lr > 0:
            raise InvalidOptionError(f"lr must be positive, got {self.lr!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InvalidOptionError(f"grad_clip must be positive or None, got {self.grad_clip!r}")
        if self.crop_sizes is not None:
            self.crop_sizes = tuple(int(c) for c in self.crop_sizes)
        from ..data.sample import KINDS

        view = KINDS.get(str(self.view).lower())
        if view is None:
            raise InvalidOptionError(f"unknown training view {self.view!r}; valid views: 'blurred' ('B'), 'normal' ('N')")
        self.view = view
        self.options, self.recipe_options = dict(self.options), dict(self.recipe_options)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["crop_sizes"] = list(self.crop_sizes) if self.crop_sizes is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def resume_mismatch(self, saved: dict) -> list[str]:
        """The settings that differ from a checkpoint's, as ``"name: saved -> now"``."""
        now = self.to_dict()
        return [f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in RESUME_KEYS if _norm(saved.get(k)) != _norm(now[k])]


def _norm(value):
    return list(value) if isinstance(value, tuple) else value
