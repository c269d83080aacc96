"""A few Adam steps of one recipe stage's loss: how the method tests check that a model learns."""

from __future__ import annotations

import torch


def adam_steps(loss, model, batch, steps: int, *, lr: float, params=None) -> list[dict[str, torch.Tensor]]:
    """Run ``steps`` Adam steps on ``loss(model, batch)["loss"]`` and return each step's loss parts, detached.

    :param loss: a recipe stage's loss, ``(model, batch) -> {"loss": ..., part: ...}``.
    :param params: the parameters to update; default all of ``model``'s.
    """
    optimiser = torch.optim.Adam(model.parameters() if params is None else params, lr=lr)
    history = []
    for _ in range(steps):
        optimiser.zero_grad()
        parts = loss(model, batch)
        parts["loss"].backward()
        optimiser.step()
        history.append({k: v.detach() for k, v in parts.items()})
    return history
