"""P3M-Net's fusion rules and its two test-time strategies, for images of any size.

Fusion (official ``util.py``): the segmentation decoder's argmax gives a
trimap-like map (0 background, 1 transition, 2 foreground); the fused matte is
the matting decoder's alpha in the transition class and 0/1 elsewhere.

Strategies (official ``core/test.py``, ``inference_img``):

* ``"hybrid"``: the segmentation map comes from a pass at ½ scale, the local
  matte from a pass at full scale; the ½-scale trimap is resized to the image
  and every pixel that is not exactly background or foreground after
  resizing takes the full-scale local alpha.
* ``"resize"``: one pass at ½ scale; its fused matte is resized to the image.

Each pass resizes the image to a multiple of 32 (rounding down, at least 32)
with each side clamped to ``max_side`` (1600 in the official code; as there,
each side is clamped on its own). All resampling is
:func:`mattezoo.resample.resize_like_skimage`, the official
``skimage.transform.resize`` done in torch on the model's device.

Which pixels of the resized trimap count as known is :mod:`mattezoo.hybrid`'s
``known_rule``: ``"official"`` (default) is the official code's exact float64
equality test, bit for bit, so with the official checkpoint the output is the
official one to float rounding of the local matte (1e-7 RESIZE, 2e-5 HYBRID
on test images); ``"solid"`` ignores the rounding noise of that test.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mattezoo import hybrid
# The model module reads these through this one (``inference.MULTIPLE`` ...).
from mattezoo.hybrid import DEFAULT_MAX_SIDE, MULTIPLE, check_known_rule, check_max_side, run_strategy  # noqa: F401



class InferenceResult(NamedTuple):
    alpha: torch.Tensor  # [B,1,H,W] fused matte in [0,1]
    trimap: torch.Tensor  # [B,1,H,W] the segmentation decoder's trimap: 0 / 0.5 / 1
    local: torch.Tensor  # [B,1,H,W] the matting decoder's alpha


def fuse(global_logits: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """Training-time fusion: local alpha where the argmax class is "transition", else 0 / 1."""
    cls = global_logits.argmax(dim=1, keepdim=True)
    return torch.where(cls == 1, local, (cls == 2).to(local.dtype))


def logits_to_trimap(global_logits: torch.Tensor) -> torch.Tensor:
    """``[B,3,H,W]`` logits -> ``[B,1,H,W]`` trimap in mattezoo's encoding (0, 0.5, 1)."""
    return global_logits.argmax(dim=1, keepdim=True).to(torch.float32) * 0.5


def check_strategy(strategy: str) -> str:
    return hybrid.check_strategy(strategy, "P3M-Net")


def infer(model, image: torch.Tensor, strategy: str = "hybrid", max_side: int = DEFAULT_MAX_SIDE,
          known_rule: str = "official") -> InferenceResult:
    """Run ``model`` (a P3M-Net) on ``image`` ``[B,3,H,W]`` in [0,1] with a test strategy."""

    def run_pass(x: torch.Tensor, segmentation: bool, matte: bool):
        maps = model.inference_maps(x, global_logits=segmentation, local=matte)
        return maps.global_logits, maps.local

    result = run_strategy(image, strategy, run_pass, who="P3M-Net", dtype=model.input_dtype, segmentation_scale=0.5,
                          matte_scale=1.0, resize_scale=0.5, classes_of=lambda logits: logits.argmax(dim=1, keepdim=True),
                          fuse=fuse, max_side=max_side, known_rule=known_rule)
    return InferenceResult(*result)
