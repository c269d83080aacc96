"""GCA Matting's training recipe: the official default objective (``trainer.py``, ``config/gca-dist*.toml``).

The released configurations set no loss weight, so the defaults of
``utils/config.py`` apply: only the alpha reconstruction loss (``rec_weight = 1``;
the composition, smooth-L1, gradient and Gabor weights are 0). It is the L1
distance of the network's alpha (before the known-region rule) to the ground
truth over the trimap's unknown region::

    loss = Σ |alpha_pred - alpha| · unknown / (Σ unknown + 1e-8)

The learning rate is the configs' ``G_lr = 4e-4``. What mattezoo's engine
(Adam at a fixed learning rate, optional fixed-norm clipping) does not
express, stated in docs/gca.md: the official Adam betas (0.5, 0.999), the
linear warm-up over the first 5,000 steps and the cosine decay over the
remaining 195,000, and the clipping at twice a moving average of past
gradient norms.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import transition_weight

GCA_LR = 4e-4
REGION_EPS = 1e-8  # the official regression loss's denominator epsilon


def _global_sum(value: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``value`` summed over DDP ranks (detached), and the world size; itself and 1 without DDP."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return value, 1
    total = value.detach().clone()
    dist.all_reduce(total)
    return total, dist.get_world_size()


def unknown_l1(pred: torch.Tensor, alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """The official weighted L1: the sum over the unknown region divided by its size (+1e-8).

    Under DistributedDataParallel the size is the global batch's, divided by
    the world size, so averaging the ranks' gradients gives the one-process loss.
    """
    weight = transition_weight(trimap).to(pred.device)
    total = ((pred.float() - alpha.float()).abs() * weight).sum()
    count, world = _global_sum(weight.sum())
    return total / ((count + REGION_EPS) / world)


def gca_losses(network_alpha: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    rec = unknown_l1(network_alpha, batch["alpha"], batch["trimap"])
    return {"loss": rec, "rec": rec}


def gca_recipe() -> Recipe:
    def loss(model, batch):
        return gca_losses(model.forward_intermediates(batch["image"], batch["trimap"]).network, batch)

    return Recipe(
        stages=(Stage("end-to-end", loss),),
        lr=GCA_LR,
        needs=("image", "alpha", "trimap"),
        description="GCA Matting (AAAI 2020): L1 alpha loss on the trimap's unknown region (official default config)",
    )
