"""One optimiser step of a method's training recipe on a fixed batch, shared by the training-step benchmarks."""

from __future__ import annotations

import contextlib

import torch

from mattezoo.train.trainer import make_adam


class Stepper:
    """One optimiser step of the recipe's loss, on a fixed batch."""

    def __init__(self, model, batch: dict, loss_fn, lr: float, *, channels_last: bool, amp: torch.dtype | None,
                 fused_adam: bool = False):
        self.model, self.loss_fn, self.amp = model, loss_fn, amp
        self.device = next(model.parameters()).device
        if channels_last:
            model.to(memory_format=torch.channels_last)
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in batch.items()}
        self.batch = batch
        # The official code's plain Adam, or the engine's (fused where torch has the kernel).
        self.optimizer = make_adam(list(model.parameters()), lr, self.device) if fused_adam \
            else torch.optim.Adam(model.parameters(), lr=lr)

    def __call__(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(self.device.type, dtype=self.amp) if self.amp else contextlib.nullcontext()
        with autocast:
            loss = self.loss_fn(self.model, self.batch)["loss"]
        loss.backward()
        self.optimizer.step()
        return loss.detach()
