"""GFM-TT's collaborative matting and the official test strategies, for images of any size.

Collaborative matting (official ``util.py``, RoSTa "TT"): the glance
decoder's argmax (0 background, 1 transition, 2 foreground) selects the focus
alpha in the transition class, 1 in the foreground and 0 in the background:
``fused = focus * [class == 1] + [class == 2]``.

Test strategies (official ``core/test.py``, ``inference_img_gfm``):

* ``"hybrid"`` (the official default): the glance map from a pass at 1/3
  scale, the focus matte from a pass at 1/2 scale; the 1/3-scale trimap
  (uint8 0/128/255) is resized to the image, and the pixels where it is
  exactly 0 or 255 (``known_rule``) take 0 / 1, all others the resized focus.
* ``"resize"``: one pass at 1/2 scale; its fused matte is resized to the image.

Each pass resizes the image to ``int(side * scale)`` rounded down to a
multiple of 32, each side capped at ``max_side`` (1600 officially). Unlike the
official code, a side that would round down to 0 is raised to 32, so small
images work. All resampling is :func:`mattezoo.resample.resize_like_skimage`,
the official ``skimage.transform.resize``; the pass sizes and the known-pixel
rules are :mod:`mattezoo.hybrid`'s, which P3M-Net's test code shares.

``known_rule="official"`` repeats the official float64 equality test bit for
bit; ``"solid"`` counts a pixel as known when every trimap pixel contributing
to it is of that class (no dependence on float rounding).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mattezoo import hybrid
# The model module reads these through this one (``inference.MULTIPLE`` ...).
from mattezoo.hybrid import DEFAULT_MAX_SIDE, MULTIPLE, check_known_rule, check_max_side, run_strategy  # noqa: F401

GLANCE_SCALE, FOCUS_SCALE = 1 / 3, 1 / 2  # HYBRID's two passes (official global_ratio / local_ratio)
RESIZE_SCALE = 1 / 2


class InferenceResult(NamedTuple):
    alpha: torch.Tensor  # [B,1,H,W] fused matte in [0,1]
    trimap: torch.Tensor  # [B,1,H,W] the glance decoder's trimap: 0 / 0.5 / 1 (known pixels as the rule says)
    focus: torch.Tensor  # [B,1,H,W] the focus decoder's alpha, resized to the image


def glance_classes(glance_logits: torch.Tensor) -> torch.Tensor:
    """``[B,1,H,W]`` argmax classes, taken over the sigmoid outputs as the official code does (ties included)."""
    return torch.sigmoid(glance_logits).argmax(dim=1, keepdim=True)


def collaborative_matting(glance_logits: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
    """The official TT fusion: ``focus * [class == 1] + [class == 2]``."""
    classes = glance_classes(glance_logits)
    return focus * (classes == 1).to(focus.dtype) + (classes == 2).to(focus.dtype)


def check_strategy(strategy) -> str:
    return hybrid.check_strategy(strategy, "GFM")


def infer(model, image: torch.Tensor, strategy: str = "hybrid", max_side: int = DEFAULT_MAX_SIDE,
          known_rule: str = "official") -> InferenceResult:
    """Run ``model`` (a GFM) on ``image`` ``[B,3,H,W]`` in [0,1], any size, with a test strategy."""

    def run_pass(x: torch.Tensor, segmentation: bool, matte: bool):
        # Each pass computes only the decoder whose output the strategy keeps from it.
        maps = model.inference_maps(x, glance=segmentation, focus=matte)
        return maps.glance_logits, maps.focus

    result = run_strategy(image, strategy, run_pass, who="GFM", dtype=model.input_dtype, segmentation_scale=GLANCE_SCALE,
                          matte_scale=FOCUS_SCALE, resize_scale=RESIZE_SCALE, classes_of=glance_classes,
                          fuse=collaborative_matting, max_side=max_side, known_rule=known_rule)
    return InferenceResult(*result)
