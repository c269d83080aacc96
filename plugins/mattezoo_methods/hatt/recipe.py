"""HAttMatting's training recipe: the paper's hybrid loss, end to end.

    generator:      1 * MSE(alpha) + 0.1 * (1 - SSIM(alpha)) + 0.05 * adversarial
    discriminator:  (BCE(D(image, true alpha), real) + BCE(D(image, predicted alpha), fake)) / 2

* MSE: the mean squared alpha error over the whole image.
* SSIM: Wang et al.'s index with an 11×11 Gaussian window (σ 1.5),
  C1 = 0.01², C2 = 0.03² (data range 1), averaged over the positions where
  the window fits inside the image (what ``skimage.metrics.structural_similarity``
  reports with ``gaussian_weights=True, use_sample_covariance=False``).
* adversarial: a 70×70 PatchGAN (``model.discriminator``) reads the image
  with an alpha matte; the generator's term is the non-saturating
  ``BCE(D(image, predicted alpha), real)``.

How one engine step trains both networks. The engine back-propagates one
scalar, ``"loss"``, into one Adam over all parameters. The recipe returns
``generator objective + discriminator objective`` built so that neither
leaks into the other: the discriminator objective sees the predicted alpha
*detached* (no gradient reaches the generator), and the generator's
adversarial term runs the discriminator through ``torch.func.functional_call``
with *detached* parameters (no gradient reaches the discriminator). The
gradient of the sum is then the generator objective's gradient on generator
parameters and the discriminator objective's on discriminator parameters,
and since Adam updates each element from its own gradient history, one Adam
over both equals two Adams with the same settings: a simultaneous
generator/discriminator update each step. The discriminator's BatchNorm
statistics move with all three of its passes (real, fake, generator term).
Resuming needs nothing special: the discriminator is a submodule, so the
engine's checkpoint holds its weights and its Adam moments with the rest.

``adversarial=False`` trains the generator on MSE + SSIM alone (and leaves
the discriminator, if built, untouched); use it with models built with
``discriminator=False``.

Facts and choices: the loss weights (adversarial 0.05, MSE 1, SSIM 0.1) are
the paper's as far as could be checked here (the text of the paper was not
available, the weights agree with an independent re-implementation's
configuration); the paper's optimiser settings could not be checked, and the
authors published no training code, so the learning rate :data:`HATT_LR`
(Adam, fixed) is this project's choice.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch.func import functional_call

from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.train import Recipe, Stage

HATT_LR = 1e-4
HATT_WEIGHTS = {"mse": 1.0, "ssim": 0.1, "adversarial": 0.05}
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def _gaussian_window(dtype, device) -> torch.Tensor:
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).to(dtype=dtype, device=device).view(1, 1, SSIM_WINDOW, SSIM_WINDOW)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ``[B]`` of ``[B,1,H,W]`` mattes in [0,1] (the mean over the window positions inside)."""
    if min(pred.shape[-2:]) < SSIM_WINDOW:
        raise InputError(f"the SSIM loss needs mattes of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, "
                         f"got {tuple(pred.shape[-2:])}")
    x, y = pred.float(), target.float()
    window = _gaussian_window(x.dtype, x.device)
    stats = F.conv2d(torch.cat((x, y, x * x, y * y, x * y), 0), window)  # valid positions only
    mx, my, mxx, myy, mxy = stats.split(x.shape[0], 0)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    index = ((2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)) / ((mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2))
    return index.mean(dim=(1, 2, 3))


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def adversarial_terms(discriminator: torch.nn.Module, image: torch.Tensor, pred: torch.Tensor,
                      alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(generator term, discriminator objective)``, each carrying gradients for its own network only."""
    d_real = discriminator(image, alpha)
    d_fake = discriminator(image, pred.detach())
    d_objective = 0.5 * (_bce(d_real, True) + _bce(d_fake, False))
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    g_term = _bce(functional_call(discriminator, frozen, (image, pred)), True)
    return g_term, d_objective


def hatt_losses(model, out, batch: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None,
                adversarial: bool = True) -> dict[str, torch.Tensor]:
    """The hybrid loss of a :class:`~.model.HAttOutput`: ``"loss"`` (what the engine trains) and its parts.

    ``"generator"`` is the generator's weighted objective; ``"discriminator"``
    the discriminator's (0 without the adversarial part).
    """
    w = {**HATT_WEIGHTS, **{k: float(v) for k, v in (weights or {}).items()}}
    alpha, pred = batch["alpha"], out.alpha
    diff = pred.float() - alpha.float()
    parts = {"mse": (diff * diff).mean(), "ssim": 1.0 - ssim(pred, alpha).mean()}
    zero = torch.zeros((), device=alpha.device)
    if adversarial:
        if getattr(model, "discriminator", None) is None:
            raise InvalidOptionError("the adversarial loss needs the model's discriminator: build it with "
                                     "discriminator=True, or train with the recipe option adversarial=False")
        parts["adversarial"], d_objective = adversarial_terms(model.discriminator, batch["image"], pred, alpha)
    else:
        parts["adversarial"], d_objective = zero, zero
    generator = sum(w[name] * parts[name] for name in HATT_WEIGHTS)
    return {"loss": generator + d_objective, "generator": generator, "discriminator": d_objective, **parts}


def hatt_recipe(loss_weights: Mapping[str, float] | None = None, adversarial: bool = True) -> Recipe:
    """The recipe; ``loss_weights`` overrides entries of :data:`HATT_WEIGHTS`; ``adversarial`` adds the GAN term."""
    weights = dict(loss_weights or {})
    unknown = sorted(set(weights) - set(HATT_WEIGHTS))
    if unknown:
        raise InvalidOptionError(f"unknown HAttMatting loss weight(s) {unknown}; valid: {sorted(HATT_WEIGHTS)}")
    if not isinstance(adversarial, bool):
        raise InvalidOptionError(f"HAttMatting recipe option adversarial must be True or False, got {adversarial!r}")

    def loss(model, batch):
        return hatt_losses(model, model.forward_intermediates(batch["image"]), batch, weights, adversarial)

    kind = "MSE + 0.1 SSIM + 0.05 PatchGAN adversarial (discriminator trained in the same step)" if adversarial \
        else "MSE + 0.1 SSIM (no adversarial term)"
    return Recipe(
        stages=(Stage("end-to-end", loss),),
        lr=HATT_LR,
        needs=("image", "alpha"),
        description=f"HAttMatting (CVPR 2020): {kind}",
    )
