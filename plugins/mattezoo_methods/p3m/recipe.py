"""The training recipe of P3M-Net and BASIC: the seed's losses (section 4.5), end to end in one stage.

Deep supervision comes from the dBFI side outputs; with dBFI switched off
(BASIC and the Table 5 ablations) there are none and only the final
segmentation output is supervised. The learning rate is the official
README's 1e-5 (Adam, fixed).
"""

from __future__ import annotations

from collections.abc import Mapping

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage, p3m_losses
from mattezoo.train.losses import P3M_WEIGHTS

P3M_LR = 1e-5


def p3m_recipe(loss_weights: Mapping[str, float] | None = None) -> Recipe:
    """The recipe; ``loss_weights`` overrides entries of ``mattezoo.train.losses.P3M_WEIGHTS``."""
    weights = dict(loss_weights or {})
    unknown = sorted(set(weights) - set(P3M_WEIGHTS))
    if unknown:
        raise InvalidOptionError(f"unknown P3M loss weight(s) {unknown}; valid: {sorted(P3M_WEIGHTS)}")

    def loss(model, batch):
        out = model.forward_intermediates(batch["image"])
        return p3m_losses(out.global_logits, out.local, out.fused, out.sides, batch, weights)

    return Recipe(
        stages=(Stage("end-to-end", loss),),
        lr=P3M_LR,
        needs=("image", "alpha", "trimap", "fg", "bg"),
        description="P3M (ACM MM 2021) section 4.5: CE + side CE, transition alpha/Laplacian, whole-image alpha/Laplacian/composition",
    )
