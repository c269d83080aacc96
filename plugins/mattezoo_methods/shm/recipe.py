"""SHM's training (paper section 4.4): two pre-training phases, then end to end.

1. ``t-net``: the T-Net alone, cross-entropy against the trimap classes
   (``L_t``); only the T-Net's parameters train.
2. ``m-net``: the M-Net alone, fed the ground-truth trimap as its three
   probability channels (one-hot), trained with the prediction loss ``L_p`` of
   the fused alpha ``F + U * alpha_r`` (with the one-hot trimap the fused alpha
   is the ground truth on the known regions and ``alpha_r`` on the unknown);
   only the M-Net's parameters train.
3. ``end-to-end``: everything, ``L = L_p + lambda * L_t`` with ``lambda = 0.01``.

``L_p = gamma * L_alpha + (1 - gamma) * L_c`` with ``gamma = 0.5``: the
Charbonnier alpha loss and the compositional loss (the composite of the
predicted alpha with the true foreground and background against the image),
both over the whole image (:mod:`mattezoo.train.losses`).

The recipe has one learning rate for all phases: 1e-5 (Adam, fixed), DIM's,
whose encoder-decoder the M-Net is. Phase lengths are ours: a third of the
steps each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import alpha_loss, composition_loss, trimap_cross_entropy

from .model import fuse, trimap_one_hot

SHM_LR = 1e-5
LAMBDA_T = 0.01  # weight of the T-Net cross-entropy in the end-to-end loss
GAMMA = 0.5  # share of the alpha loss in L_p (the compositional loss has 1 - gamma)
PHASES = ("t-net", "m-net", "end-to-end")


def prediction_loss(fused: torch.Tensor, batch: Mapping[str, torch.Tensor], gamma: float = GAMMA) -> dict[str, torch.Tensor]:
    """``L_p`` and its two parts for a fused alpha ``[B,1,H,W]``."""
    parts = {
        "alpha": alpha_loss(fused, batch["alpha"]),
        "composition": composition_loss(fused, batch["image"], batch["fg"], batch["bg"]),
    }
    return {"prediction": gamma * parts["alpha"] + (1.0 - gamma) * parts["composition"], **parts}


def t_net_loss(model, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ce = trimap_cross_entropy(model.segment(batch["image"]), batch["trimap"])
    return {"loss": ce, "trimap": ce}


def m_net_loss(model, batch: Mapping[str, torch.Tensor], gamma: float = GAMMA) -> dict[str, torch.Tensor]:
    probs = trimap_one_hot(batch["trimap"])
    parts = prediction_loss(fuse(probs, model.matte(batch["image"], probs)), batch, gamma)
    return {"loss": parts["prediction"], **parts}


def end_to_end_loss(model, batch: Mapping[str, torch.Tensor], lambda_t: float = LAMBDA_T,
                    gamma: float = GAMMA) -> dict[str, torch.Tensor]:
    out = model.forward_intermediates(batch["image"])
    parts = prediction_loss(out.fused, batch, gamma)
    ce = trimap_cross_entropy(out.trimap_logits, batch["trimap"])
    return {"loss": parts["prediction"] + lambda_t * ce, "trimap": ce, **parts}


def shm_recipe(phases: Sequence[str] = PHASES, lambda_t: float = LAMBDA_T, gamma: float = GAMMA) -> Recipe:
    """The recipe: ``phases`` (a subsequence of :data:`PHASES`, equal shares of the steps) run in order."""
    phases = tuple(phases)
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        raise InvalidOptionError(f"unknown or no SHM training phase(s) {unknown or list(phases)}; valid: {', '.join(PHASES)}")
    if list(phases) != sorted(set(phases), key=PHASES.index):
        raise InvalidOptionError(f"SHM phases run in the order {', '.join(PHASES)}, each once; got {list(phases)}")
    for name, value in (("lambda_t", lambda_t), ("gamma", gamma)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= (1 if name == "gamma" else float("inf")):
            raise InvalidOptionError(f"{name} must be a number{' in [0, 1]' if name == 'gamma' else ' >= 0'}, got {value!r}")
    stages = {
        "t-net": Stage("t-net", t_net_loss, trainable=lambda model: model.t_net.parameters()),
        "m-net": Stage("m-net", lambda model, batch: m_net_loss(model, batch, gamma),
                       trainable=lambda model: model.m_net.parameters()),
        "end-to-end": Stage("end-to-end", lambda model, batch: end_to_end_loss(model, batch, lambda_t, gamma)),
    }
    return Recipe(
        stages=tuple(stages[p] for p in phases),
        lr=SHM_LR,
        needs=("image", "alpha", "trimap", "fg", "bg"),
        description=f"SHM (ACM MM 2018): {' -> '.join(phases)}; L_p = {gamma:g} alpha + {1 - gamma:g} composition, "
                    f"end to end L_p + {lambda_t:g} CE",
    )
