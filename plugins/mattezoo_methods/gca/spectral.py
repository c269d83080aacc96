"""Spectral normalisation with the official GCA-Matting layout and numerics (``networks/ops.py``).

The official wrapper keeps the wrapped convolution as ``module`` and replaces
its ``weight`` by ``weight_bar`` (trained) plus the power-iteration vectors
``weight_u`` / ``weight_v``, so the checkpoint keys read
``<name>.module.weight_bar`` / ``.weight_u`` / ``.weight_v``. The effective
kernel is ``weight_bar / sigma`` with ``sigma = u · (W v)``, ``W`` being
``weight_bar`` flattened to ``[out, -1]`` (``[in, -1]`` for a transposed
convolution, whose first dimension is its input channels).

Facts kept from the official module:

* in training mode every forward first runs one power iteration on the
  detached kernel (``v = n(Wᵀu)``, ``u = n(Wv)``, ``n(x) = x / (|x| + 1e-12)``)
  and stores the vectors; gradients flow through ``W`` in ``sigma`` but not
  through ``u`` and ``v``;
* in eval mode the stored vectors are used as they are: inference never
  changes the model, so two runs give the same output.

One deliberate difference: the official module registers ``weight_u`` and
``weight_v`` as parameters with ``requires_grad=False``; here they are
buffers. The ``state_dict`` keys and values are the same, but no optimiser or
``requires_grad_(True)`` sweep can turn them into trained weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-12  # the official l2normalize's epsilon


def _normalized(x: torch.Tensor) -> torch.Tensor:
    return x / (x.norm() + NORM_EPS)


class SpectralNorm(nn.Module):
    """``conv`` (an ``nn.Conv2d`` or ``nn.ConvTranspose2d``) with a spectrally normalised kernel."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, power_iterations: int = 1):
        super().__init__()
        if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)):
            raise TypeError(f"SpectralNorm wraps a Conv2d or ConvTranspose2d, got {type(conv).__name__}")
        weight = conv.weight
        rows = weight.shape[0]
        del conv.weight  # replaced by weight_bar / sigma at every call, as officially
        conv.register_parameter("weight_bar", nn.Parameter(weight.detach().clone()))
        conv.register_buffer("weight_u", _normalized(weight.new_empty(rows).normal_()))
        conv.register_buffer("weight_v", _normalized(weight.new_empty(weight[0].numel()).normal_()))
        self.module = conv
        self.power_iterations = power_iterations

    @torch.no_grad()
    def _power_iteration(self) -> None:
        conv = self.module
        matrix = conv.weight_bar.reshape(conv.weight_bar.shape[0], -1)
        u, v = conv.weight_u, conv.weight_v
        for _ in range(self.power_iterations):
            v.copy_(_normalized(matrix.t().mv(u)))
            u.copy_(_normalized(matrix.mv(v)))

    def kernel(self) -> torch.Tensor:
        """The normalised kernel ``weight_bar / sigma`` the convolution uses now."""
        conv = self.module
        if self.training:
            self._power_iteration()
        w = conv.weight_bar
        # Clones: the buffers change in place at the next training forward, and
        # autograd must keep the values this forward used.
        sigma = torch.dot(conv.weight_u.clone(), w.reshape(w.shape[0], -1).mv(conv.weight_v.clone()))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, weight = self.module, self.kernel()
        if isinstance(conv, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, weight, conv.bias, conv.stride, conv.padding, conv.output_padding,
                                      conv.groups, conv.dilation)
        return conv._conv_forward(x, weight, conv.bias)
