"""IndexNet Matting's training recipe: the official ``weighted_loss`` of ``scripts/hltrainval.py``, end to end.

    loss = 0.5 * alpha-prediction loss + 0.5 * composition loss

both on the trimap's unknown region only, per sample:

* alpha: ``Σ sqrt(((raw - α) · m)² + ε²) / Σ m`` with ``ε = 1e-6``, where
  ``raw`` is the network's unclipped output and ``m`` the unknown mask (the
  masked-out pixels still add ``ε`` each, as officially);
* composition: ``raw · fg + (1 - raw) · bg`` against the composite image,
  the same Charbonnier sum over the three colour channels divided by the
  same ``Σ m`` (one channel's count);
* each is averaged over the batch (the official ``.sum() / batch size``).

The official crops are centred on an unknown pixel, so ``Σ m`` is never 0
there; here a sample without unknown pixels divides by 1 instead of 0.

Learning rate: the official ``train.sh`` trains with Adam at 1e-2 for the
new layers (index blocks, ASPP, decoder, prediction: names containing
``index``, ``dconv`` or ``pred``) and 1e-2 / 100 = 1e-4 for the ImageNet
MobileNetV2 encoder, batch 16, 320×320 crops, 30 epochs, with the rate divided
by 10 after epochs 20 and 26 (``MultiStepLR``), no weight decay. mattezoo's
engine runs one fixed-rate Adam over all parameters; the recipe's rate is the
official 1e-2 of the freshly initialised layers, since the engine trains
every layer from scratch (pass a lower rate, or load ``backbone_weights`` and
train at 1e-4, to stay closer to the official encoder rate). The schedule and
the per-group rates are not reproduced.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import CHARBONNIER_EPS, transition_weight

INDEXNET_LR = 1e-2
ALPHA_WEIGHT = 0.5  # the official wl: alpha loss weight; the composition loss gets 1 - wl
# Official parameter groups: names with these parts train at the full rate, the rest (the encoder) at rate / 100.
NEW_LAYER_MARKS = ("dconv", "pred", "index")
ENCODER_LR_DIVISOR = 100


def _charbonnier_sum(diff: torch.Tensor) -> torch.Tensor:
    """Per-sample ``Σ sqrt(diff² + ε²)`` over channels and pixels: ``[B]``."""
    return torch.sqrt(diff * diff + CHARBONNIER_EPS).sum(dim=(1, 2, 3))


def indexnet_losses(raw: torch.Tensor, batch: Mapping[str, torch.Tensor],
                    alpha_weight: float = ALPHA_WEIGHT) -> dict[str, torch.Tensor]:
    """The official objective and its parts from the raw prediction ``[B,1,H,W]`` (``"loss"`` is the weighted total)."""
    raw = raw.float()
    mask = transition_weight(batch["trimap"])
    count = mask.sum(dim=(1, 2, 3)).clamp_min(1.0)
    alpha = _charbonnier_sum((raw - batch["alpha"].float()) * mask) / count
    composite = raw * batch["fg"].float() + (1.0 - raw) * batch["bg"].float()
    composition = _charbonnier_sum((composite - batch["image"].float()) * mask) / count
    parts = {"alpha": alpha.mean(), "composition": composition.mean()}
    return {"loss": alpha_weight * parts["alpha"] + (1.0 - alpha_weight) * parts["composition"], **parts}


def official_parameter_groups(model: torch.nn.Module, lr: float = INDEXNET_LR) -> list[dict]:
    """The official two Adam groups: new layers at ``lr``, the encoder at ``lr / 100`` (for a hand-written loop)."""
    new, encoder = [], []
    for name, param in model.named_parameters():
        (new if any(mark in name for mark in NEW_LAYER_MARKS) else encoder).append(param)
    return [{"params": new, "lr": lr}, {"params": encoder, "lr": lr / ENCODER_LR_DIVISOR}]


def indexnet_recipe(alpha_weight: float = ALPHA_WEIGHT) -> Recipe:
    """The recipe; ``alpha_weight`` is the official ``wl`` (0.5), the composition loss gets ``1 - alpha_weight``."""
    if isinstance(alpha_weight, bool) or not isinstance(alpha_weight, (int, float)) or not 0.0 <= alpha_weight <= 1.0:
        raise InvalidOptionError(f"alpha_weight must be a number in [0, 1] (0.5 officially), got {alpha_weight!r}")
    weight = float(alpha_weight)

    def loss(model, batch):
        return indexnet_losses(model.forward_intermediates(batch["image"], batch["trimap"]).raw, batch, weight)

    return Recipe(
        stages=(Stage("end-to-end", loss),),
        lr=INDEXNET_LR,
        needs=("image", "alpha", "trimap", "fg", "bg"),
        description="IndexNet Matting (ICCV 2019): 0.5 alpha + 0.5 composition loss on the unknown region, per sample",
    )
