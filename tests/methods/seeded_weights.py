"""Deterministic weights for one state-dict key at a time, shared by the official-fixture tests.

The fixtures in ``tests/methods/data`` hold official implementations' outputs
for weights made here: every key gets its own generator seeded by the key's
CRC32, so a tensor depends on its name and shape alone, never on the order
in which a model lists its parameters. The values keep activations at a
sane size through deep random networks: He-scaled kernels, BatchNorm
statistics near the identity.
"""

from __future__ import annotations

import math
import zlib

import torch


def key_generator(name: str) -> torch.Generator:
    """The generator a key's tensor is drawn from."""
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def seeded_tensor(name: str, shape: tuple[int, ...], *, kernel_gain: float = 1.0, norm_gain: float = 1.0,
                  kernel_dims: int = 4, norm_layers: bool = True) -> torch.Tensor:
    """A deterministic tensor for the key ``name``.

    :param kernel_gain: multiplies a He-scaled kernel (a per-key shrink keeps a random head from saturating).
    :param norm_gain: multiplies a normalisation layer's scale.
    :param kernel_dims: tensors with at least this many dims are He-scaled kernels (2 includes linear layers).
    :param norm_layers: give BatchNorm statistics and 1-D ``weight`` scales their own values; without it
        everything but the kernels is small noise.
    """
    gen = key_generator(name)
    leaf = name.rsplit(".", 1)[-1]
    if norm_layers and leaf == "num_batches_tracked":
        return torch.tensor(0)
    if norm_layers and leaf == "running_mean":
        return 0.1 * torch.randn(shape, generator=gen)
    if norm_layers and leaf == "running_var":
        return 0.75 + 0.5 * torch.rand(shape, generator=gen)
    if len(shape) >= kernel_dims:
        return math.sqrt(2.0 / math.prod(shape[1:])) * kernel_gain * torch.randn(shape, generator=gen)
    if norm_layers and leaf == "weight" and len(shape) == 1:
        return norm_gain * (1.0 + 0.1 * torch.randn(shape, generator=gen))
    return 0.05 * torch.randn(shape, generator=gen)


def model_with_state(build, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """``build()`` in eval mode holding exactly ``state`` (strict), without first initialising its parameters."""
    with torch.device("meta"):  # skip the random init that the state replaces anyway
        model = build()
    model.to_empty(device="cpu")
    model.load_state_dict(state, strict=True)
    return model.eval()
