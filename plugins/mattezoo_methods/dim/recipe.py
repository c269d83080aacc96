"""DIM's training recipe: the paper's three stages with the losses of OpenMMLab's DIM configs.

1. ``encoder-decoder`` (``dim_stage1``: ``train_backbone=True``,
   ``train_refiner=False``): the encoder-decoder alone, refiner not run;
   ``0.5 * alpha-prediction + 0.5 * compositional`` loss on the encoder-decoder's matte.
2. ``refinement`` (``dim_stage2``: the encoder-decoder frozen): only the
   refiner trains, on the alpha-prediction loss of the refined matte.
3. ``fine-tune`` (``dim_stage3``: everything trains): mmagic keeps both
   stage-1 losses on the encoder-decoder's matte and adds the refined matte's
   alpha-prediction loss (``finetune_losses="mmagic"``, the default);
   ``"refined"`` keeps only the last, as the paper's text can be read.

Every loss is on the trimap's unknown region. The alpha-prediction loss is
Charbonnier (``sqrt(d² + 1e-12)``) of alpha; the compositional loss is
Charbonnier of the composite ``alpha * fg + (1 - alpha) * bg`` against the
image, in [0,1] (mmagic divides fg, bg and the merged image by 255), averaged
over the 3 colour channels of the region. Both come from
:mod:`mattezoo.train.losses`: their region mean divides by
``region pixels + 1`` where mmagic divides by ``region pixels + 1e-12`` (a
relative difference of 1 / region size; identical gradients up to that
factor, as the Charbonnier term outside the region has zero gradient).

The three stages get equal shares of the steps (1,000,000 iterations each in
mmagic). The learning rate is mmagic's (and the paper's) 1e-5 with Adam in
every stage, as the engine's fixed-lr Adam runs it; mmagic trains at batch 1
on 320×320 crops, the engine at the batch and size it is given.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import alpha_loss, transition_weight

DIM_LR = 1e-5
DIM_WEIGHTS = {"alpha": 0.5, "composition": 0.5, "refine": 1.0}  # loss_alpha, loss_comp, loss_refine
STAGES = ("all", "encoder_decoder")  # the three paper stages, or stage 1 alone (a model built with refine=False)
FINETUNE_LOSSES = ("mmagic", "refined")


def region_composition_loss(pred, image, fg, bg, region) -> torch.Tensor:
    """Charbonnier distance of ``pred·fg + (1-pred)·bg`` to the image, mean over the region's pixels and colours."""
    composite = pred.float() * fg.float() + (1.0 - pred.float()) * bg.float()
    # alpha_loss sums the 3 channels over the region and divides by the region's pixel count: / 3 makes it a mean.
    return alpha_loss(composite, image.float(), region) / composite.shape[1]


def encoder_decoder_losses(alpha, batch: Mapping[str, torch.Tensor], region) -> dict[str, torch.Tensor]:
    return {
        "alpha": alpha_loss(alpha, batch["alpha"], region),
        "composition": region_composition_loss(alpha, batch["image"], batch["fg"], batch["bg"], region),
    }


def dim_losses(out, batch: Mapping[str, torch.Tensor], stage: str, weights: Mapping[str, float] | None = None,
               finetune_losses: str = "mmagic") -> dict[str, torch.Tensor]:
    """The objective of one stage (``"encoder-decoder"``, ``"refinement"``, ``"fine-tune"``) from a ``DIMOutput``."""
    w = {**DIM_WEIGHTS, **{k: float(v) for k, v in (weights or {}).items()}}
    region = transition_weight(batch["trimap"])
    parts: dict[str, torch.Tensor] = {}
    if stage == "encoder-decoder" or (stage == "fine-tune" and finetune_losses == "mmagic"):
        parts.update(encoder_decoder_losses(out.alpha, batch, region))
    if stage in ("refinement", "fine-tune"):
        parts["refine"] = alpha_loss(out.refined, batch["alpha"], region)
    return {"loss": sum(w[name] * value for name, value in parts.items()), **parts}


def _need_refiner(model) -> None:
    if getattr(model, "refiner", None) is None:
        raise InvalidOptionError("the refinement and fine-tune stages need a DIM with its refiner (refine=True); "
                                 "train a refine=False model with the recipe option stages='encoder_decoder'")


def dim_recipe(loss_weights: Mapping[str, float] | None = None, stages: str = "all",
               finetune_losses: str = "mmagic") -> Recipe:
    """The recipe.

    :param loss_weights: overrides entries of :data:`DIM_WEIGHTS`.
    :param stages: ``"all"`` (the three stages) or ``"encoder_decoder"``
        (stage 1 alone: the stage-1 model, e.g. built with ``refine=False``).
    :param finetune_losses: stage 3's losses: ``"mmagic"`` (both stage-1
        losses plus the refined alpha loss) or ``"refined"`` (the refined
        alpha loss alone).
    """
    weights = dict(loss_weights or {})
    unknown = sorted(set(weights) - set(DIM_WEIGHTS))
    if unknown:
        raise InvalidOptionError(f"unknown DIM loss weight(s) {unknown}; valid: {sorted(DIM_WEIGHTS)}")
    if stages not in STAGES:
        raise InvalidOptionError(f"unknown DIM stages {stages!r}; valid: {', '.join(STAGES)}")
    if finetune_losses not in FINETUNE_LOSSES:
        raise InvalidOptionError(f"unknown finetune_losses {finetune_losses!r}; valid: {', '.join(FINETUNE_LOSSES)}")

    def stage_loss(name: str, refine: bool):
        def loss(model, batch):
            if stages == "all":  # fail on the first step, not a third of the way into training
                _need_refiner(model)
            out = model.forward_intermediates(batch["image"], batch["trimap"], refine=refine)
            return dim_losses(out, batch, name, weights, finetune_losses)

        return loss

    def backbone_params(model):
        return model.backbone.parameters()

    def refiner_params(model):
        _need_refiner(model)
        return model.refiner.parameters()

    first = Stage("encoder-decoder", stage_loss("encoder-decoder", False), trainable=backbone_params)
    if stages == "encoder_decoder":
        chosen = (first,)
    else:
        chosen = (first, Stage("refinement", stage_loss("refinement", True), trainable=refiner_params),
                  Stage("fine-tune", stage_loss("fine-tune", True)))
    return Recipe(
        stages=chosen,
        lr=DIM_LR,
        needs=("image", "alpha", "trimap", "fg", "bg"),
        description="DIM (CVPR 2017): encoder-decoder with 0.5 alpha + 0.5 composition (unknown region), "
                    "then the refiner alone on its alpha loss, then the whole network",
    )
