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
images work. All resampling is :func:`.resample.skimage_resize`, the official
``skimage.transform.resize``.

``known_rule="official"`` repeats the official float64 equality test bit for
bit; ``"solid"`` counts a pixel as known when every trimap pixel contributing
to it is of that class (no dependence on float rounding).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mattezoo.errors import InputError, InvalidOptionError

from .resample import skimage_resize, upsample_float64_like_scipy

STRATEGIES = ("hybrid", "resize")
KNOWN_RULES = ("official", "solid")
DEFAULT_MAX_SIDE = 1600  # official MAX_SIZE_H / MAX_SIZE_W
MULTIPLE = 32  # the encoder downsamples five times
GLANCE_SCALE, FOCUS_SCALE = 1 / 3, 1 / 2  # HYBRID's two passes (official global_ratio / local_ratio)
RESIZE_SCALE = 1 / 2
_SOLID_EPS = 1e-6


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


def working_size(height: int, width: int, scale: float, max_side: int) -> tuple[int, int]:
    """The official pass size: ``int(side * scale)`` down to a multiple of 32, at most ``max_side``, at least 32."""
    cap = max(MULTIPLE, max_side - max_side % MULTIPLE)

    def one(side: int) -> int:
        scaled = int(side * scale)
        return min(cap, max(MULTIPLE, scaled - scaled % MULTIPLE))

    return one(height), one(width)


def known_masks(classes: torch.Tensor, size: tuple[int, int], rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(background, foreground)`` masks ``[B,1,H,W]`` of the official resized trimap ``resize(uint8) * 255``."""
    levels = (torch.tensor((0.0, 128.0, 255.0), dtype=torch.float64, device=classes.device) / 255.0)[classes]
    if size[0] >= levels.shape[-2] and size[1] >= levels.shape[-1]:
        resized = upsample_float64_like_scipy(levels, size) * 255.0
    else:
        # Only images with a side under 32 px get here (their passes are
        # raised to 32 px; the official code cannot run them): skimage would
        # also blur, which skimage_resize does, to float64 rounding.
        resized = skimage_resize(levels, size) * 255.0
    if rule == "official":
        return resized == 0.0, resized == 255.0
    return resized <= 255.0 * _SOLID_EPS, resized >= 255.0 * (1.0 - _SOLID_EPS)


def fuse_known(background: torch.Tensor, foreground: torch.Tensor, focus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official ``get_masked_local_from_global_test``: known pixels take 0 / 1, the others the focus alpha.

    Returns (alpha, trimap 0/0.5/1).
    """
    known = background | foreground
    alpha = torch.where(known, foreground.to(focus.dtype), focus)
    trimap = torch.where(known, foreground.float(), torch.full_like(focus, 0.5, dtype=torch.float32))
    return alpha, trimap


def check_image(image) -> None:
    """Refuse anything but a finite, non-empty ``[B,3,H,W]`` float tensor in [0,1]."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"GFM takes a [B,3,H,W] float tensor in [0,1], got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"GFM takes an RGB image tensor [B,3,H,W], got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"GFM takes a float image in [0,1], got dtype {image.dtype}; divide uint8 images by 255")
    if 0 in image.shape:
        raise InputError(f"image tensor is empty: shape {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("image tensor contains NaN or infinite values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"image values must lie in [0,1], got [{lo:.4g}, {hi:.4g}]; divide uint8 images by 255")


def check_strategy(strategy) -> str:
    if strategy not in STRATEGIES:
        raise InvalidOptionError(f"unknown GFM test strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    return strategy


def check_max_side(max_side) -> int:
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < MULTIPLE:
        raise InvalidOptionError(f"max_side must be an int >= {MULTIPLE} (the per-side size cap of a pass), got {max_side!r}")
    return max_side


def check_known_rule(rule) -> str:
    if rule not in KNOWN_RULES:
        raise InvalidOptionError(f"unknown HYBRID known-pixel rule {rule!r}; valid rules: {', '.join(KNOWN_RULES)}")
    return rule


def infer(model, image: torch.Tensor, strategy: str = "hybrid", max_side: int = DEFAULT_MAX_SIDE,
          known_rule: str = "official") -> InferenceResult:
    """Run ``model`` (a GFM) on ``image`` ``[B,3,H,W]`` in [0,1], any size, with a test strategy."""
    check_image(image)
    check_strategy(strategy)
    check_max_side(max_side)
    check_known_rule(known_rule)
    height, width = image.shape[-2:]
    image = image.to(model.input_dtype)
    if strategy == "hybrid":
        # Each pass computes only the decoder whose output HYBRID keeps from it.
        glance = model.inference_maps(skimage_resize(image, working_size(height, width, GLANCE_SCALE, max_side)),
                                      focus=False).glance_logits
        focus = model.inference_maps(skimage_resize(image, working_size(height, width, FOCUS_SCALE, max_side)),
                                     glance=False).focus
        focus = skimage_resize(focus.float(), (height, width))
        background, foreground = known_masks(glance_classes(glance), (height, width), known_rule)
        alpha, trimap = fuse_known(background, foreground, focus)
    else:
        maps = model.inference_maps(skimage_resize(image, working_size(height, width, RESIZE_SCALE, max_side)))
        alpha = skimage_resize(collaborative_matting(maps.glance_logits, maps.focus).float(), (height, width))
        focus = skimage_resize(maps.focus.float(), (height, width))
        background, foreground = known_masks(glance_classes(maps.glance_logits), (height, width), known_rule)
        _, trimap = fuse_known(background, foreground, focus)
    return InferenceResult(alpha.clamp(0.0, 1.0), trimap, focus)
