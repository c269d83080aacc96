"""AlphaGAN's training recipe: DIM's two matting losses plus the adversarial game, in one engine step.

    generator:     L_G = w_alpha · L_alpha + w_comp · L_comp + w_adv · GAN(D(fake composite, trimap) → real)
    discriminator: L_D = ½ · [GAN(D(real composite, trimap) → real) + GAN(D(fake composite, trimap) → fake)]

* ``L_alpha``: Charbonnier distance of the generator's alpha to the ground
  truth, ``sqrt(d² + 1e-12)``, summed over the trimap's unknown region and
  divided by its size + 1 (DIM's alpha-prediction loss);
* ``L_comp``: the same on the composite ``α·fg + (1-α)·bg`` against the
  image, averaged over the 3 colours (DIM's compositional loss);
* the discriminator judges composites with the trimap as a 4th channel: the
  *fake* one is made with the predicted matte (known pixels taken from the
  trimap), the *real* one with the ground-truth alpha, on the same fg and bg;
* ``gan_mode="vanilla"`` (default): the GAN loss of the paper's objective,
  as the usual non-saturating binary cross-entropy on logits; ``"lsgan"``:
  squared error to 1 / 0 (what the CDOTAD re-implementation trains with).

Default weights are the paper's sum ``L_alpha + L_comp + L_GAN``, all 1;
``loss_weights`` changes them (the CDOTAD re-implementation uses alpha 0.5,
composition 0.5, adversarial 0.001). The learning rate is 2e-4, pix2pix's
Adam rate for both networks (the PatchGAN setting AlphaGAN adopts).

**How the discriminator trains.** It is a submodule of the model
(``model.discriminator``), so the engine's single Adam over
``model.parameters()`` steps it and the engine's checkpoint saves its weights
and Adam moments: a resumed run continues exactly. The stage's loss is
``L_G + L_D``, built so each network gets only its own gradient:

* ``L_D`` sees the fake composite *detached* from the generator, so it
  sends nothing to the generator;
* the generator's adversarial term runs the discriminator with *detached
  parameters* (``torch.func.functional_call``), so it sends nothing to the
  discriminator, and the generator is pushed towards "real" while the
  discriminator is pushed to tell them apart, by one backward pass.

Both networks step at once from the same pre-step state (pix2pix alternates:
discriminator step, then generator step against the updated discriminator).
Each network has its own Adam moments, so their scales do not mix. The
generator-only weights of a trained model are
``model.generator_state_dict()``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from mattezoo.errors import InvalidOptionError
from mattezoo.train import Recipe, Stage
from mattezoo.train.losses import alpha_loss, transition_weight

ALPHAGAN_LR = 2e-4
ALPHAGAN_WEIGHTS = {"alpha": 1.0, "composition": 1.0, "adversarial": 1.0, "discriminator": 1.0}
GAN_MODES = ("vanilla", "lsgan")


def composite(alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    alpha = alpha.float()
    return alpha * fg.float() + (1.0 - alpha) * bg.float()


def region_composition_loss(alpha, image, fg, bg, region) -> torch.Tensor:
    """Charbonnier distance of the composite to the image over the region, per colour channel."""
    # alpha_loss sums the 3 channels and divides by the region's pixel count (+1); / 3 makes it a per-channel mean.
    return alpha_loss(composite(alpha, fg, bg), image.float(), region) / image.shape[1]


def gan_loss(logits: torch.Tensor, real: bool, mode: str = "vanilla") -> torch.Tensor:
    """The GAN criterion of patch logits against the label ``real``: BCE on logits, or LSGAN's squared error."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if mode == "lsgan":
        return F.mse_loss(logits.float(), target.float())
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def alphagan_losses(model, batch: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None,
                    gan_mode: str = "vanilla") -> dict[str, torch.Tensor]:
    """One step's objective (``"loss"`` = generator total + discriminator loss) and its parts."""
    w = {**ALPHAGAN_WEIGHTS, **{k: float(v) for k, v in (weights or {}).items()}}
    trimap, gt, fg, bg = batch["trimap"], batch["alpha"], batch["fg"], batch["bg"]
    out = model.forward_intermediates(batch["image"], trimap)
    region = transition_weight(trimap)
    fake = composite(out.alpha, fg, bg)
    real = composite(gt, fg, bg)
    parts = {
        "alpha": alpha_loss(out.raw, gt, region),
        "composition": region_composition_loss(out.raw, batch["image"], fg, bg, region),
        "adversarial": gan_loss(model.discriminate(fake, trimap, frozen=True), True, gan_mode),
        "discriminator": 0.5 * (gan_loss(model.discriminate(real, trimap), True, gan_mode)
                                + gan_loss(model.discriminate(fake.detach(), trimap), False, gan_mode)),
    }
    generator = sum(w[name] * parts[name] for name in ("alpha", "composition", "adversarial"))
    return {"loss": generator + w["discriminator"] * parts["discriminator"], "generator": generator.detach(), **parts}


def alphagan_recipe(loss_weights: Mapping[str, float] | None = None, gan_mode: str = "vanilla") -> Recipe:
    """The recipe; ``loss_weights`` overrides entries of :data:`ALPHAGAN_WEIGHTS`; ``gan_mode`` is one of :data:`GAN_MODES`."""
    weights = dict(loss_weights or {})
    unknown = sorted(set(weights) - set(ALPHAGAN_WEIGHTS))
    if unknown:
        raise InvalidOptionError(f"unknown AlphaGAN loss weight(s) {unknown}; valid: {sorted(ALPHAGAN_WEIGHTS)}")
    if gan_mode not in GAN_MODES:
        raise InvalidOptionError(f"unknown gan_mode {gan_mode!r}; valid: {', '.join(GAN_MODES)}")

    def loss(model, batch):
        return alphagan_losses(model, batch, weights, gan_mode)

    return Recipe(
        stages=(Stage("adversarial", loss),),
        lr=ALPHAGAN_LR,
        needs=("image", "alpha", "trimap", "fg", "bg"),
        description="AlphaGAN (BMVC 2018): DIM alpha + composition losses (unknown region) plus a PatchGAN on "
                    "composite + trimap, generator and discriminator stepped together",
    )
