"""FBA's training recipe: the paper's losses on alpha, F and B (the official code releases no training code).

The paper's final objective (Forte & Pitié 2020, section on losses)::

    L = L1(alpha) + Lcomp(alpha) + Lgrad(alpha) + Llap(alpha)
        + 0.25 * (L1(F, B) + Lcomp(F, B) + Lexcl(F, B) + Llap(F, B))

computed on the network's fused outputs (alpha after the F/B/alpha fusion),
one stage, end to end. What the paper states is kept: the eight terms, the
weights 1 and 0.25, the composition of the predicted alpha with the true F
and B, the composition of the true alpha with the predicted F and B, and
the exclusion loss of Zhang et al. (CVPR 2018) between the predicted F and B.

Where the paper leaves a choice, this recipe takes one (``loss_weights``
can change the weights):

* regions: the alpha L1, composition and gradient terms are averaged over
  the trimap's unknown region (sum / (count + 1), :mod:`mattezoo.train.losses`),
  as in DIM, on which these terms build; the Laplacian terms and every F/B
  term cover the whole image (the official README: F/B losses "on the entire
  image", with F extended beyond the object);
* L1 is the Charbonnier form of :func:`mattezoo.train.losses.alpha_loss`
  (``sqrt(d² + 1e-12)``, equal to L1 to 1e-6); colour terms sum over the 3
  channels per pixel;
* the gradient term is the L1 distance of forward differences along x and y;
* the Laplacian terms weight pyramid level ``s`` = 1..5 (fine to coarse) by
  ``2^(s-1)`` as the paper's formula does; the five levels are four band-pass
  levels and the low-pass residual of
  :func:`mattezoo.train.losses.laplacian_pyramid` (the paper names no kernel);
  each level's L1 is a mean over its pixels;
* the exclusion term: at 3 scales (2×2 average pooling in between), for x and
  y differences, the root mean square of ``tanh(l_F |dF|) * tanh(l_B |dB|)``
  with ``l_F = sqrt(mean|dB| / mean|dF|)`` and ``l_B = 1 / l_F`` (detached
  normalisers), averaged over the scales.

Learning rate: the paper trains with RAdam at 1e-5, batch size 1 (group norm
makes that work). The mattezoo engine trains with Adam at a fixed rate; the
recipe's rate is the paper's 1e-5.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import alpha_loss, laplacian_pyramid, transition_weight

FBA_LR = 1e-5
FBA_WEIGHTS = {
    "l1_alpha": 1.0, "composition_alpha": 1.0, "gradient_alpha": 1.0, "laplacian_alpha": 1.0,
    "l1_fb": 0.25, "composition_fb": 0.25, "exclusion_fb": 0.25, "laplacian_fb": 0.25,
}
EXCLUSION_LEVELS = 3
LAPLACIAN_BANDS = 4  # band-pass levels; with the residual, the paper's five levels


def _region_mean(diff: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Charbonnier norm of ``diff`` summed over channels and the region, / (region size + 1)."""
    return alpha_loss(diff, torch.zeros_like(diff), region)


def _pixel_mean(diff: torch.Tensor) -> torch.Tensor:
    """Charbonnier norm of ``diff`` ``[B,C,H,W]`` summed over channels, averaged over pixels."""
    return alpha_loss(diff, torch.zeros_like(diff)) * diff.shape[1]


def _differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x (``[..., H, W-1]``) and y (``[..., H-1, W]``)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def gradient_loss(pred: torch.Tensor, alpha: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """L1 distance of the x and y forward differences of two mattes, over the pixel pairs inside the region."""
    (px, py), (ax, ay) = _differences(pred.float()), _differences(alpha.float())
    rx = region[..., :, 1:] * region[..., :, :-1]
    ry = region[..., 1:, :] * region[..., :-1, :]
    return _region_mean(px - ax, rx) + _region_mean(py - ay, ry)


def weighted_laplacian_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``sum_s 2^(s-1) * mean |L_s(pred) - L_s(target)|`` over pyramid levels; channels go through one by one."""
    pred = pred.float().reshape(-1, 1, *pred.shape[-2:])
    target = target.float().reshape(-1, 1, *target.shape[-2:])
    levels = zip(laplacian_pyramid(pred, LAPLACIAN_BANDS), laplacian_pyramid(target, LAPLACIAN_BANDS))
    return sum(2.0**s * F.l1_loss(p, t) for s, (p, t) in enumerate(levels))


def exclusion_loss(fg: torch.Tensor, bg: torch.Tensor, levels: int = EXCLUSION_LEVELS) -> torch.Tensor:
    """Zhang et al.'s exclusion loss: edges of F and B should not coincide (see the module docstring)."""
    fg, bg = fg.float(), bg.float()
    total = fg.new_zeros(())
    for level in range(levels):
        for df, db in zip(_differences(fg), _differences(bg)):
            af, ab = df.abs(), db.abs()
            scale = torch.sqrt(ab.mean() / (af.mean() + 1e-12) + 1e-12).detach()
            product = torch.tanh(scale * af) * torch.tanh(ab / scale)
            total = total + torch.sqrt((product * product).mean() + 1e-12)
        if level + 1 < levels:
            fg, bg = F.avg_pool2d(fg, 2), F.avg_pool2d(bg, 2)
    return total / levels


def fba_losses(out, batch: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """FBA's objective and its parts from an :class:`~.model.FBAOutput` (``"loss"`` is the weighted total)."""
    w = {**FBA_WEIGHTS, **{k: float(v) for k, v in (weights or {}).items()}}
    alpha, image, fg, bg = (batch[k].float() for k in ("alpha", "image", "fg", "bg"))
    unknown = transition_weight(batch["trimap"])
    pred = out.alpha.float()
    parts = {
        "l1_alpha": alpha_loss(pred, alpha, unknown),
        "composition_alpha": _region_mean(pred * fg + (1 - pred) * bg - image, unknown),
        "gradient_alpha": gradient_loss(pred, alpha, unknown),
        "laplacian_alpha": weighted_laplacian_loss(pred, alpha),
        "l1_fb": _pixel_mean(out.fg.float() - fg) + _pixel_mean(out.bg.float() - bg),
        "composition_fb": _pixel_mean(alpha * out.fg.float() + (1 - alpha) * out.bg.float() - image),
        "exclusion_fb": exclusion_loss(out.fg, out.bg),
        "laplacian_fb": weighted_laplacian_loss(out.fg, fg) + weighted_laplacian_loss(out.bg, bg),
    }
    return {"loss": sum(w[name] * value for name, value in parts.items()), **parts}


def fba_recipe(loss_weights: Mapping[str, float] | None = None) -> Recipe:
    """The recipe; ``loss_weights`` overrides entries of :data:`FBA_WEIGHTS`."""
    weights = dict(loss_weights or {})
    unknown = sorted(set(weights) - set(FBA_WEIGHTS))
    if unknown:
        raise InvalidOptionError(f"unknown FBA loss weight(s) {unknown}; valid: {sorted(FBA_WEIGHTS)}")

    def loss(model, batch):
        return fba_losses(model.forward_intermediates(batch["image"], batch["trimap"]), batch, weights)

    return Recipe(
        stages=(Stage("end-to-end", loss),),
        lr=FBA_LR,
        needs=("image", "alpha", "trimap", "fg", "bg"),
        description="FBA (2020): L1, composition, gradient, Laplacian on alpha + 0.25 x (L1, composition, "
                    "exclusion, Laplacian) on F and B",
    )
