"""Benchmark presets: how much data, how much training, at what size.

``quick`` (the default) runs every registered method under every protocol on
the embedded synthetic set on a 2-core CPU. Its training is sized by
measurement (see docs/bench-quick.md): each learned method trains once per
view for 120 Adam steps on batches of 4 crops of 64 px, at lr 1e-3 (measured
at equal compute, batch 4 × 120 steps at lr 1e-3 beat batch 8 × 60 steps at
lr 5e-4 or 2e-3 for BASIC and P3M-Net). A step takes 0.3 s (IndexNet, BASIC)
to 1.2 s (SHM's end-to-end phase, HAttMatting, AlphaGAN) on the idle box, so
the eleven learned methods of the built-in zoo train for about half an hour
in all; the classical methods and every evaluation add a few minutes. It
shows that the harness and every method work end to end and how the
protocols compare at toy scale; its numbers are not the paper's.

``standard`` is for a GPU: larger synthetic data, longer training.
``paper`` is the seed's recipe on P3M-10k: 512 px crops, batch 8, lr 1e-5,
150 k steps, full-resolution test sets (needs ``--data p3m10k:PATH``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import InputError, choices_hint


@dataclass(frozen=True)
class Preset:
    """One benchmark size.

    :param data: the default ``--data`` (``None``: the user must give one).
    :param size: side of the synthetic portraits (real data keeps its own size).
    :param n_train: training portraits (``None``: all of a real data set).
    :param n_test: portraits per test set (``None``: all of a real data set).
    :param max_side: real data only: shrink images whose longer side is larger.
    :param steps: optimiser steps per training run (one run per method and training view).
    :param batch: training batch size.
    :param crop: side of the training crops (``TrainConfig.size``).
    :param lr: Adam's learning rate (``None``: the method's recipe, i.e. the paper's).
    :param device: the default ``--device``.
    :param keep: predictions kept per cell for the image grid.
    :param seed: seeds the synthetic data, the folder split and training.
    :param checkpoint_every: training checkpoints every this many steps, so
        a killed run resumes mid-way (0: only at the end).
    :param keep_checkpoints: keep each training run's checkpoint once all of
        its cells are finished (a P3M-Net checkpoint with its Adam state is
        about 450 MB; the quick preset drops them and keeps the logs).
    """

    name: str
    description: str
    data: str | None = "synthetic"
    size: int = 128
    n_train: int | None = 64
    n_test: int | None = 8
    max_side: int | None = None
    steps: int = 60
    batch: int = 8
    crop: int = 64
    lr: float | None = None
    device: str = "cpu"
    amp: str = "auto"
    keep: int = 3
    seed: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **changes) -> "Preset":
        """A copy with the given fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PRESETS = {
    "quick": Preset(
        name="quick",
        description="embedded synthetic set at 128 px, short CPU training: every method and protocol on 2 CPU cores (about 35 min for the built-in zoo)",
        size=128, n_train=64, n_test=8, steps=120, batch=4, crop=64, lr=1e-3, device="cpu", keep_checkpoints=False,
    ),
    "standard": Preset(
        name="standard",
        description="synthetic set at 320 px, 2,000 portraits, 20 k steps of 256 px crops: for a GPU",
        size=320, n_train=2000, n_test=100, steps=20000, batch=16, crop=256, lr=1e-4, device="cuda", keep=4, checkpoint_every=1000,
    ),
    "paper": Preset(
        name="paper",
        description="the seed's recipe on P3M-10k: 512 px crops, batch 8, lr 1e-5, 150 k steps, full test sets",
        data=None, size=512, n_train=None, n_test=None, steps=150_000, batch=8, crop=512, lr=1e-5, device="cuda", keep=4, checkpoint_every=5000,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}. {choices_hint(str(name), list(PRESETS), 'presets')}") from None
