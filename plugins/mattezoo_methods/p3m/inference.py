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

from mattezoo.errors import InvalidOptionError
from mattezoo.hybrid import (  # noqa: F401 - DEFAULT_MAX_SIDE, MULTIPLE: this module's test-time constants
    DEFAULT_MAX_SIDE,
    MULTIPLE,
    check_image,
    check_known_rule,
    check_max_side,
    fuse_known,
    known_masks,
    working_size,
)
from mattezoo.resample import resize_like_skimage

STRATEGIES = ("hybrid", "resize")


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


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The official code's resampling (``skimage.transform.resize`` defaults)."""
    return resize_like_skimage(x, size)


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise InvalidOptionError(f"unknown P3M-Net test strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    return strategy


def infer(model, image: torch.Tensor, strategy: str = "hybrid", max_side: int = DEFAULT_MAX_SIDE,
          known_rule: str = "official") -> InferenceResult:
    """Run ``model`` (a P3M-Net) on ``image`` ``[B,3,H,W]`` in [0,1] with a test strategy."""
    check_image(image, "P3M-Net")
    check_strategy(strategy)
    check_max_side(max_side)
    check_known_rule(known_rule)
    height, width = image.shape[-2:]
    dtype = model.input_dtype
    image = image.to(dtype)
    hybrid = strategy == "hybrid"
    # HYBRID takes only the segmentation map from the ½-scale pass and only the
    # local matte from the full-scale one; RESIZE takes both from the ½-scale pass.
    half = model.inference_maps(resize(image, working_size(height, width, 0.5, max_side)), local=not hybrid)
    classes = half.global_logits.argmax(dim=1, keepdim=True)
    background, foreground = known_masks(classes, (height, width), known_rule)
    if hybrid:
        full = model.inference_maps(resize(image, working_size(height, width, 1.0, max_side)), global_logits=False)
        local = resize(full.local.float(), (height, width))
        alpha, trimap = fuse_known(background, foreground, local)
    else:
        alpha = resize(fuse(half.global_logits, half.local).float(), (height, width))
        local = resize(half.local.float(), (height, width))
        _, trimap = fuse_known(background, foreground, local)  # the trimap HYBRID would have used
    return InferenceResult(alpha.clamp(0.0, 1.0), trimap, local)
