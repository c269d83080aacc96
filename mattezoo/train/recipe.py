"""Training recipes: what each learned method brings to the training engine.

A :class:`Recipe` is one or more :class:`Stage` s run one after another over
the step budget (SHM trains its parts in stages, DIM its encoder-decoder
before its refinement, ...). A stage says which parameters train and how a
batch becomes losses. The engine does everything else: data, optimiser,
precision, checkpoints, distribution.

A method gets its recipe from the first of:

1. a plugin's ``mattezoo_training_recipe(spec)`` hook (so a third party can
   train its own method, or retrain a built-in one its own way);
2. ``MethodSpec.recipe``, a ``"module:callable"`` returning a :class:`Recipe`.

Methods with neither (the classical ones) are not trainable.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InvalidOptionError, MattezooError

# Keys a batch can hold (see mattezoo.train.batches): what a recipe may ask for.
BATCH_KEYS = ("image", "alpha", "trimap", "fg", "bg")

LossFn = Callable[[nn.Module, Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]]


@dataclass(frozen=True)
class Stage:
    """One phase of training.

    :param name: shown in logs and checkpoints.
    :param loss: ``loss(model, batch) -> {"loss": total, part: value, ...}``;
        the engine back-propagates ``"loss"`` and logs every entry.
    :param fraction: the stage's share of the total steps (shares are
        normalised over the recipe's stages).
    :param trainable: ``trainable(model) -> parameters`` updated in this stage;
        ``None`` trains all of them.
    """

    name: str
    loss: LossFn
    fraction: float = 1.0
    trainable: Callable[[nn.Module], Iterable[nn.Parameter]] | None = None

    def __post_init__(self):
        if not callable(self.loss):
            raise TypeError(f"stage {self.name!r}: loss must be callable")
        if not self.fraction > 0:
            raise ValueError(f"stage {self.name!r}: fraction must be positive, got {self.fraction!r}")


@dataclass(frozen=True)
class Recipe:
    """How a method is trained.

    :param stages: run in order; each gets ``fraction`` of the steps.
    :param lr: the paper's learning rate (Adam, fixed), used unless the user gives one.
    :param needs: batch keys the losses read (``"fg"``/``"bg"`` for a composition loss,
        ``"trimap"`` for transition-region losses or trimap-based inputs).
    :param description: one line for logs and ``mattezoo info``.
    """

    stages: tuple[Stage, ...]
    lr: float = 1e-5
    needs: tuple[str, ...] = ("image", "alpha", "trimap")
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "needs", tuple(self.needs))
        if not self.stages or not all(isinstance(s, Stage) for s in self.stages):
            raise TypeError("a Recipe needs at least one Stage")
        unknown = sorted(set(self.needs) - set(BATCH_KEYS))
        if unknown:
            raise ValueError(f"recipe needs unknown batch keys {unknown}; valid keys: {', '.join(BATCH_KEYS)}")
        if not self.lr > 0:
            raise ValueError(f"recipe lr must be positive, got {self.lr!r}")

    def stage_bounds(self, total_steps: int) -> list[tuple[int, int]]:
        """``[start, end)`` steps of each stage for a run of ``total_steps``."""
        shares = [s.fraction for s in self.stages]
        bounds, start, acc = [], 0, 0.0
        for i, share in enumerate(shares):
            acc += share
            end = total_steps if i == len(shares) - 1 else int(round(total_steps * acc / sum(shares)))
            bounds.append((start, max(start, end)))
            start = max(start, end)
        return bounds

    def stage_at(self, step: int, total_steps: int) -> Stage:
        """The stage that runs step ``step`` (0-based)."""
        for stage, (start, end) in zip(self.stages, self.stage_bounds(total_steps)):
            if start <= step < end:
                return stage
        return self.stages[-1]


def _load_callable(ref: str, what: str):
    module_name, _, attr = ref.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise MattezooError(f"{what}: cannot load {ref}: {type(exc).__name__}: {exc}") from exc
    return obj


def find_recipe(spec, options: Mapping[str, object] | None = None, pm=None) -> Recipe | None:
    """The recipe of a registered method, or ``None`` when it is not trainable.

    ``options`` go to the callable of ``spec.recipe`` (a recipe from a plugin
    hook takes none).
    """
    if pm is None:
        from ..registry import get_registry

        pm = get_registry().pm
    options = dict(options or {})
    recipe = pm.hook.mattezoo_training_recipe(spec=spec)
    if recipe is None and spec.recipe:
        factory = _load_callable(spec.recipe, f"method {spec.name!r} recipe")
        accepted = inspect.signature(factory).parameters
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise InvalidOptionError(
                f"the recipe of {spec.name!r} has no option {', '.join(map(repr, unknown))}; valid: {', '.join(accepted) or 'none'}"
            )
        recipe = factory(**options)
    elif recipe is not None and options:
        raise InvalidOptionError(f"recipe options {sorted(options)} were given, but the recipe of {spec.name!r} comes from a plugin hook and takes none")
    if recipe is not None and not isinstance(recipe, Recipe):
        raise MattezooError(f"method {spec.name!r}: its training recipe is a {type(recipe).__name__}, not a mattezoo.train.Recipe")
    return recipe


def trainable_methods() -> list[str]:
    """Names of the registered methods that have a training recipe."""
    from ..registry import get_registry

    registry = get_registry()
    return [n for n in registry.names() if find_recipe(registry.get(n), pm=registry.pm) is not None]


def has_recipe(name: str) -> bool:
    """Whether the method ``name`` can be trained by :func:`mattezoo.train.train_method`."""
    from ..registry import get_registry, split_name_tag

    spec = get_registry().get(split_name_tag(name)[0])
    return find_recipe(spec) is not None
