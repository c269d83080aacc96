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
:func:`~mattezoo_methods.p3m.resample.resize_like_skimage`, the official
``skimage.transform.resize`` done in torch on the model's device.

Which pixels of the resized trimap count as known is :mod:`.known`'s
``known_rule``: ``"official"`` (default) is the official code's exact float64
equality test, bit for bit, so with the official checkpoint the output is the
official one to float rounding of the local matte (1e-7 RESIZE, 2e-5 HYBRID
on test images); ``"solid"`` ignores the rounding noise of that test.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mattezoo.errors import InputError, InvalidOptionError

from .known import check_known_rule, known_masks
from .resample import resize_like_skimage

STRATEGIES = ("hybrid", "resize")
DEFAULT_MAX_SIDE = 1600  # official MAX_SIZE_H / MAX_SIZE_W
MULTIPLE = 32  # five stride-2 pools


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


def fuse_known(background: torch.Tensor, foreground: torch.Tensor, local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time fusion (official ``get_masked_local_from_global_test``): returns (alpha, trimap 0/0.5/1).

    Known pixels take 0 / 1, all others the local alpha.
    """
    known = background | foreground
    alpha = torch.where(known, foreground.to(local.dtype), local)
    trimap = torch.where(known, foreground.to(torch.float32), torch.full_like(local, 0.5, dtype=torch.float32))
    return alpha, trimap


def working_size(height: int, width: int, scale: float, max_side: int) -> tuple[int, int]:
    """The official pass size: ``int(side * scale)`` rounded down to a multiple of 32, clamped to ``max_side``."""
    cap = max(MULTIPLE, max_side - max_side % MULTIPLE)

    def one(side: int) -> int:
        scaled = int(side * scale)
        return min(cap, max(MULTIPLE, scaled - scaled % MULTIPLE))

    return one(height), one(width)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The official code's resampling (``skimage.transform.resize`` defaults)."""
    return resize_like_skimage(x, size)


def check_image(image) -> None:
    """Refuse anything but a finite ``[B,3,H,W]`` float tensor in [0,1]."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"P3M-Net takes a [B,3,H,W] float tensor in [0,1], got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"P3M-Net takes an RGB image tensor [B,3,H,W], got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"P3M-Net takes a float image in [0,1], got dtype {image.dtype}; divide uint8 images by 255")
    if image.shape[0] == 0 or image.shape[-2] == 0 or image.shape[-1] == 0:
        raise InputError(f"image tensor is empty: shape {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("image tensor contains NaN or infinite values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"image values must lie in [0,1], got [{lo:.4g}, {hi:.4g}]; divide uint8 images by 255")


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise InvalidOptionError(f"unknown P3M-Net test strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    return strategy


def check_max_side(max_side) -> int:
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < MULTIPLE:
        raise InvalidOptionError(f"max_side must be an int >= {MULTIPLE} (the image side cap of a pass), got {max_side!r}")
    return max_side


def infer(model, image: torch.Tensor, strategy: str = "hybrid", max_side: int = DEFAULT_MAX_SIDE,
          known_rule: str = "official") -> InferenceResult:
    """Run ``model`` (a P3M-Net) on ``image`` ``[B,3,H,W]`` in [0,1] with a test strategy."""
    check_image(image)
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
