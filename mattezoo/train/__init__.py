"""The training engine: one loop for every learned method, each bringing its own recipe.

::

    from mattezoo.data import SyntheticP3M
    from mattezoo.train import TrainConfig, train_method

    cfg = TrainConfig(method="p3m_net", steps=200, batch=4, size=128)
    result = train_method(cfg, SyntheticP3M("train", n=64, size=256), view="blurred", out="runs/p3m")
    result.model  # eval mode, ready for mattezoo.predict

Under ``torchrun --nproc_per_node=N`` the same call trains with
DistributedDataParallel (see distributed.py). ``mattezoo train`` is the CLI.
"""

from .batches import TrainingBatches
from .checkpoint import load_training_checkpoint
from .config import AMP_MODES, TrainConfig
from .losses import (
    alpha_loss,
    composition_loss,
    laplacian_loss,
    laplacian_pyramid,
    p3m_losses,
    transition_weight,
    trimap_classes,
    trimap_cross_entropy,
)
from .recipe import BATCH_KEYS, Recipe, Stage, find_recipe, has_recipe, trainable_methods
from .trainer import TrainResult, train_method

__all__ = [
    "AMP_MODES",
    "BATCH_KEYS",
    "Recipe",
    "Stage",
    "TrainConfig",
    "TrainResult",
    "TrainingBatches",
    "alpha_loss",
    "composition_loss",
    "find_recipe",
    "has_recipe",
    "laplacian_loss",
    "laplacian_pyramid",
    "load_training_checkpoint",
    "p3m_losses",
    "train_method",
    "trainable_methods",
    "transition_weight",
    "trimap_classes",
    "trimap_cross_entropy",
]
