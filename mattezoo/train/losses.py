"""The training losses of P3M-Net (paper section 4.5), as the official code computes them.

Tensors: ``alpha``/``pred`` are ``[B,1,H,W]`` in [0,1]; ``trimap`` is
``[B,1,H,W]`` in mattezoo's encoding (0 background, 0.5 transition,
1 foreground); ``image``, ``fg`` and ``bg`` are ``[B,3,H,W]`` in [0,1].

Facts taken from the official implementation (JizhiziLi/P3M ``core/evaluate.py``
and ``core/train.py``), kept so that our losses equal theirs:

* the alpha losses are the Charbonnier form ``sqrt(d² + 1e-12)``; on the
  transition region the sum is divided by ``(number of transition pixels + 1)``;
* the Laplacian loss sums the L1 distances of 5 band-pass levels and the
  low-pass residual; its 5×5 smoothing kernel is the normalised *sum* of two
  1-D Gaussians ``exp(-(i-2)²/σ²) + exp(-(j-2)²/σ²)`` (σ = 1), not their
  product, with replicate padding and 2×2 average pooling between levels;
* the composition loss divides its sum over the 3 colour channels by the
  number of alpha pixels.

One deliberate difference: the official composition loss compares the
composite (0..255) with the ImageNet-normalised network input, which cannot
be matched; here the composite is compared with the [0,1] image itself.

Region normalisers are *global* under DistributedDataParallel (summed over
ranks), so N processes on a global batch compute the same gradient as one
process on the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from ..errors import InputError

CHARBONNIER_EPS = 1e-12
LAPLACIAN_LEVELS = 5


def trimap_classes(trimap: torch.Tensor) -> torch.Tensor:
    """``[B,1,H,W]`` trimap (0/0.5/1) -> ``[B,H,W]`` int64 classes 0 (bg), 1 (transition), 2 (fg)."""
    return torch.round(trimap[:, 0].float() * 2.0).clamp_(0, 2).long()


def transition_weight(trimap: torch.Tensor) -> torch.Tensor:
    """1 on the transition region of the trimap, 0 elsewhere (``[B,1,H,W]``)."""
    return (trimap_classes(trimap) == 1).unsqueeze(1).to(torch.float32)


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _region_denominator(weight_sum: torch.Tensor) -> torch.Tensor:
    """``weight_sum + 1`` of the *global* batch, divided by the world size under DDP.

    DDP averages the ranks' gradients, so a rank dividing its own sum by
    ``(global count + 1) / world`` gives exactly the single-process loss.
    """
    world = _world_size()
    if world == 1:
        return weight_sum + 1.0
    total = weight_sum.detach().clone()
    torch.distributed.all_reduce(total)
    return (total + 1.0) / world


def trimap_cross_entropy(logits: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``[B,3,H,W]`` segmentation logits against the trimap classes (mean over pixels)."""
    return F.cross_entropy(logits.float(), trimap_classes(trimap))


def alpha_loss(pred: torch.Tensor, alpha: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Charbonnier alpha loss: the mean over the image, or over ``weight`` (sum / (Σweight + 1))."""
    diff = pred.float() - alpha.float()
    if weight is None:
        return torch.sqrt(diff * diff + CHARBONNIER_EPS).mean()
    diff = diff * weight
    return torch.sqrt(diff * diff + CHARBONNIER_EPS).sum() / _region_denominator(weight.sum())


def laplacian_kernel(sigma: float = 1.0, size: int = 5, *, device=None) -> torch.Tensor:
    """The official 5×5 smoothing kernel ``[1,1,5,5]``: normalised sum of two 1-D Gaussians."""
    c = size // 2
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - c) ** 2) / (sigma * sigma))
    k = g[None, :] + g[:, None]
    return (k / k.sum()).to(torch.float32, copy=False).reshape(1, 1, size, size).to(device)


def laplacian_pyramid(x: torch.Tensor, levels: int = LAPLACIAN_LEVELS) -> list[torch.Tensor]:
    """Band-pass levels (``x - smooth(x)``, halving in between) followed by the low-pass residual."""
    kernel = laplacian_kernel(device=x.device).to(x.dtype)
    pad = kernel.shape[-1] // 2
    pyramid, current = [], x
    for _ in range(levels):
        smooth = F.conv2d(F.pad(current, (pad, pad, pad, pad), mode="replicate"), kernel)
        pyramid.append(current - smooth)
        current = F.avg_pool2d(smooth, 2)
    pyramid.append(current)
    return pyramid


def laplacian_loss(pred: torch.Tensor, alpha: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over pyramid levels of the mean L1 distance; with ``weight``, both mattes are masked first."""
    pred, alpha = pred.float(), alpha.float()
    if weight is not None:
        pred, alpha = pred * weight, alpha * weight
    if min(pred.shape[-2:]) < 2**LAPLACIAN_LEVELS:
        raise InputError(f"the Laplacian loss needs mattes of at least {2**LAPLACIAN_LEVELS}×{2**LAPLACIAN_LEVELS} pixels, got {tuple(pred.shape[-2:])}")
    return sum(F.l1_loss(p, a) for p, a in zip(laplacian_pyramid(pred), laplacian_pyramid(alpha)))


def composition_loss(pred: torch.Tensor, image: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """Charbonnier distance between ``pred·fg + (1-pred)·bg`` and the image, summed over colour, mean over pixels."""
    pred = pred.float()
    comp = pred * fg.float() + (1.0 - pred) * bg.float()
    diff = comp - image.float()
    return torch.sqrt(diff * diff + CHARBONNIER_EPS).sum() / pred.numel()


# The official weights: loss = global/6 + 2·local + 3·fusion_alpha + composition,
# with global = 3·CE(final) + Σ CE(side outputs).
P3M_WEIGHTS = {"global": 1.0 / 6.0, "global_final": 3.0, "local": 2.0, "fusion": 3.0, "composition": 1.0}


def p3m_losses(
    global_logits: torch.Tensor,
    local: torch.Tensor,
    fused: torch.Tensor,
    sides: Sequence[torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    weights: Mapping[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """P3M-Net's training objective and its parts (``"loss"`` is the weighted total).

    ``batch`` holds ``image``, ``alpha``, ``trimap``, ``fg`` and ``bg``.
    ``weights`` overrides entries of :data:`P3M_WEIGHTS`.
    """
    w = dict(P3M_WEIGHTS)
    if weights:
        unknown = sorted(set(weights) - set(w))
        if unknown:
            raise InputError(f"unknown loss weight(s) {unknown}; valid: {sorted(w)}")
        w.update({k: float(v) for k, v in weights.items()})
    alpha, trimap = batch["alpha"], batch["trimap"]
    region = transition_weight(trimap)
    ce_final = trimap_cross_entropy(global_logits, trimap)
    ce_sides = sum((trimap_cross_entropy(s, trimap) for s in sides), torch.zeros((), device=alpha.device))
    parts = {
        "global": w["global_final"] * ce_final + ce_sides,
        "local": alpha_loss(local, alpha, region) + laplacian_loss(local, alpha, region),
        "fusion": alpha_loss(fused, alpha) + laplacian_loss(fused, alpha),
        "composition": composition_loss(fused, batch["image"], batch["fg"], batch["bg"]),
    }
    total = sum(w[name] * value for name, value in parts.items())
    return {"loss": total, **parts}
