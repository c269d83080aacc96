"""LF's training recipe: the paper's three phases as three stages.

1. ``"segmentation"`` (encoder and both decoders train): each branch gets a
   cross-entropy against the soft target (``F`` against ``alpha``, ``B``
   against ``1 - alpha``) over the whole image, which makes the branches agree
   on the hard part, plus an L1 and a gradient (L1 of the x / y finite
   differences) loss on the transition region, where the soft part lives:
   ``seg = sum over branches of (ce + l1 + gradient)``.
2. ``"fusion"`` (only the fusion network trains; the branches are frozen,
   their BatchNorm statistics included): the alpha loss of the fused matte,
   weighted ``1`` on the transition region and ``FUSION_OUTSIDE_WEIGHT``
   elsewhere, normalised by the weight sum.
3. ``"end-to-end"`` (everything trains): ``seg_weight * seg + fusion``.

The transition region is the batch trimap's unknown band (made from alpha by
the data pipeline), which holds every pixel with ``0 < alpha < 1``.

What the engine cannot express: it runs one Adam at one fixed learning rate
for all stages, while the paper lowers the rate for the joint fine-tuning;
:data:`LF_LR` is used throughout. The stage lengths are shares of the step
budget (:data:`STAGE_FRACTIONS`), not the paper's epoch counts.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import alpha_loss, transition_weight

LF_LR = 1e-4
STAGE_FRACTIONS = {"segmentation": 0.4, "fusion": 0.2, "end-to-end": 0.4}
# ce / l1 / gradient: per-branch term weights; fusion_outside: fusion-loss weight off the transition region;
# seg: weight of the branches' loss in the end-to-end stage.
LF_WEIGHTS = {"ce": 1.0, "l1": 1.0, "gradient": 1.0, "fusion_outside": 0.1, "seg": 0.5}


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """L1 between the x and y forward differences of ``pred`` and ``target`` where both taps lie in ``region``.

    Sum over such pairs divided by (their number + 1), like the region losses of :mod:`mattezoo.train.losses`.
    """
    total = pred.new_zeros((), dtype=torch.float32)
    count = pred.new_zeros((), dtype=torch.float32)
    pred, target = pred.float(), target.float()
    for dim in (-1, -2):
        n = pred.shape[dim]
        d_pred = pred.narrow(dim, 1, n - 1) - pred.narrow(dim, 0, n - 1)
        d_target = target.narrow(dim, 1, n - 1) - target.narrow(dim, 0, n - 1)
        pair = region.narrow(dim, 1, n - 1) * region.narrow(dim, 0, n - 1)
        total = total + ((d_pred - d_target).abs() * pair).sum()
        count = count + pair.sum()
    return total / (count + 1.0)


def branch_loss(logits: torch.Tensor, prob: torch.Tensor, target: torch.Tensor, region: torch.Tensor,
                w: Mapping[str, float]) -> torch.Tensor:
    """One branch's segmentation loss: soft-target cross-entropy, transition L1 and gradient."""
    ce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    return w["ce"] * ce + w["l1"] * alpha_loss(prob, target, region) + w["gradient"] * gradient_loss(prob, target, region)


def fusion_loss(alpha_pred: torch.Tensor, alpha: torch.Tensor, region: torch.Tensor, outside: float) -> torch.Tensor:
    """Alpha loss weighted 1 on the transition region and ``outside`` elsewhere, over the weight sum (+1)."""
    weight = region + outside * (1.0 - region)
    diff = (alpha_pred.float() - alpha.float()) * weight
    return torch.sqrt(diff * diff + 1e-12).sum() / (weight.sum() + 1.0)


def lf_losses(out, batch: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """The parts of LF's objective from an :class:`~.model.LFOutput`: ``fg``, ``bg``, ``seg``, ``fusion``."""
    w = {**LF_WEIGHTS, **{k: float(v) for k, v in (weights or {}).items()}}
    alpha = batch["alpha"]
    region = transition_weight(batch["trimap"])
    fg = branch_loss(out.fg_logits, out.fg, alpha, region, w)
    bg = branch_loss(out.bg_logits, out.bg, 1.0 - alpha, region, w)
    return {"fg": fg, "bg": bg, "seg": fg + bg, "fusion": fusion_loss(out.alpha, alpha, region, w["fusion_outside"])}


def _branch_parameters(model):
    for part in (model.encoder, model.fg_decoder, model.bg_decoder):
        yield from part.parameters()


def _set_branch_mode(model, frozen: bool) -> None:
    # Frozen branches keep their BatchNorm statistics too (eval mode); the engine sets train mode once.
    for part in (model.encoder, model.fg_decoder, model.bg_decoder):
        part.train(not frozen and model.training)


def lf_recipe(loss_weights: Mapping[str, float] | None = None) -> Recipe:
    """The recipe; ``loss_weights`` overrides entries of :data:`LF_WEIGHTS`."""
    weights = dict(loss_weights or {})
    unknown = sorted(set(weights) - set(LF_WEIGHTS))
    if unknown:
        raise InvalidOptionError(f"unknown LF loss weight(s) {unknown}; valid: {sorted(LF_WEIGHTS)}")

    def segmentation(model, batch):
        _set_branch_mode(model, frozen=False)
        parts = lf_losses(model.forward_intermediates(batch["image"]), batch, weights)
        return {"loss": parts["seg"], **parts}

    def fusion(model, batch):
        _set_branch_mode(model, frozen=True)
        parts = lf_losses(model.forward_intermediates(batch["image"]), batch, weights)
        return {"loss": parts["fusion"], **parts}

    def end_to_end(model, batch):
        _set_branch_mode(model, frozen=False)
        parts = lf_losses(model.forward_intermediates(batch["image"]), batch, weights)
        seg_weight = float(weights.get("seg", LF_WEIGHTS["seg"]))
        return {"loss": seg_weight * parts["seg"] + parts["fusion"], **parts}

    return Recipe(
        stages=(
            Stage("segmentation", segmentation, STAGE_FRACTIONS["segmentation"], trainable=_branch_parameters),
            Stage("fusion", fusion, STAGE_FRACTIONS["fusion"], trainable=lambda model: model.fusion.parameters()),
            Stage("end-to-end", end_to_end, STAGE_FRACTIONS["end-to-end"]),
        ),
        lr=LF_LR,
        needs=("image", "alpha", "trimap"),
        description="LF (CVPR 2019): branch CE + transition L1/gradient, then fusion (branches frozen), then joint",
    )
