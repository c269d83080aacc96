"""GFM-TT's training recipe: the official losses and weights (``core/train.py``, ``core/evaluate.py``), end to end.

    loss = 0.25 * CE(glance) + 0.25 * (alpha + Laplacian on the transition region of the focus matte)
         + 0.25 * (alpha + Laplacian of the fused matte, whole image) + 0.25 * composition of the fused matte

Facts kept from the official code:

* the cross-entropy is applied to the glance decoder's *sigmoid* outputs
  (``nn.CrossEntropyLoss`` takes them as logits), not to the raw logits;
* the focus losses use the transition region of the trimap (sum over the
  region / (region size + 1)), the fused-matte losses the whole image; the
  alpha losses are Charbonnier, the Laplacian kernel is the one of
  :mod:`mattezoo.train.losses` (identical in both official code bases);
* the composition loss compares ``fused * fg + (1 - fused) * bg`` with the
  input image; the official one does it in 0..255 and divides by 255, which is
  the [0,1] loss here (its epsilon differs by the factor 255²: negligible).

The learning rate is the official scripts' 1e-5 (Adam, fixed).

``glance_ce="logits"`` (not the default) takes the cross-entropy of the raw
glance logits instead, the usual form: with the official form a glance head
whose sigmoids saturate gets no gradient back, which short runs at high
learning rates fall into (every pixel predicted as one class).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import alpha_loss, composition_loss, laplacian_loss, transition_weight, trimap_cross_entropy

GFM_LR = 1e-5
GFM_WEIGHTS = {"global": 0.25, "local": 0.25, "fusion": 0.25, "composition": 0.25}
GLANCE_CE = ("sigmoid", "logits")  # what the cross-entropy reads: the official sigmoid outputs, or the logits


def gfm_losses(out, batch: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None,
               glance_ce: str = "sigmoid") -> dict[str, torch.Tensor]:
    """GFM-TT's objective and its parts from a :class:`~.model.GFMOutput` (``"loss"`` is the weighted total)."""
    w = {**GFM_WEIGHTS, **{k: float(v) for k, v in (weights or {}).items()}}
    alpha, trimap = batch["alpha"], batch["trimap"]
    region = transition_weight(trimap)
    parts = {
        "global": trimap_cross_entropy(out.glance if glance_ce == "sigmoid" else out.glance_logits, trimap),
        "local": alpha_loss(out.focus, alpha, region) + laplacian_loss(out.focus, alpha, region),
        "fusion": alpha_loss(out.fused, alpha) + laplacian_loss(out.fused, alpha),
        "composition": composition_loss(out.fused, batch["image"], batch["fg"], batch["bg"]),
    }
    return {"loss": sum(w[name] * value for name, value in parts.items()), **parts}


def gfm_recipe(loss_weights: Mapping[str, float] | None = None, glance_ce: str = "sigmoid") -> Recipe:
    """The recipe; ``loss_weights`` overrides entries of :data:`GFM_WEIGHTS`; ``glance_ce`` is one of :data:`GLANCE_CE`."""
    weights = dict(loss_weights or {})
    unknown = sorted(set(weights) - set(GFM_WEIGHTS))
    if unknown:
        raise InvalidOptionError(f"unknown GFM loss weight(s) {unknown}; valid: {sorted(GFM_WEIGHTS)}")
    if glance_ce not in GLANCE_CE:
        raise InvalidOptionError(f"unknown glance_ce {glance_ce!r}; valid: {', '.join(GLANCE_CE)}")

    def loss(model, batch):
        return gfm_losses(model.forward_intermediates(batch["image"]), batch, weights, glance_ce)

    return Recipe(
        stages=(Stage("end-to-end", loss),),
        lr=GFM_LR,
        needs=("image", "alpha", "trimap", "fg", "bg"),
        description="GFM (IJCV 2022) TT: 0.25 each of glance CE, focus transition alpha/Laplacian, "
                    "fused alpha/Laplacian, composition",
    )
