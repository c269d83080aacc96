"""What the official HYBRID / RESIZE test strategies of P3M-Net and GFM share (JizhiziLi/P3M and
JizhiziLi/GFM ``core/test.py``, ``util.py``): pass sizes, image checks, and which pixels of the
resized trimap count as known, by the official rule bit for bit or by a tolerant one.

The official test code turns the coarse pass's argmax into a uint8 trimap
(0 / 128 / 255), resizes it to the image with ``skimage.transform.resize`` (float64: ``uint8 / 255``, bilinear,
clipped to the input's range) times 255, and keeps a pixel as background or
foreground only where that float64 value *equals* 0 or 255; every other pixel
takes the full-scale local matte. Inside a solid foreground region the
bilinear weights ``w`` and ``1 - w`` often sum to one ulp less than 1, so about
0.5% of the pixels of a typical output go to the local matte for no reason but
rounding.

``known_rule="official"`` (the default) reproduces that rule exactly: for the
upsampling HYBRID does, the float64 value is computed with scipy's own
arithmetic (``ndimage.zoom`` with ``grid_mode=True``, ``mode="mirror"``,
order 1: per-axis weights ``1 - t`` and ``1 - (1 - t)``, the four products
``(value * wy) * wx`` summed in raster order), so the known pixels are those
of the official code, and with the official checkpoint so is the output.

``known_rule="solid"`` counts a pixel as known when every trimap pixel that
contributes to it is of that known class (its float64 value within 1e-6 of
0 or 1; a real contribution of the 128 class moves it by ``0.5 * weight``,
far more). It is independent of float rounding and of the scipy version, so it
suits comparisons across implementations and hardware; it hands the local
matte only the pixels near a predicted transition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from . import checks
from .checks import check_image  # noqa: F401  (plugins and tests import it from here)
from .errors import InvalidOptionError
from .resample import resize_like_skimage, upsample_like_skimage_float64

STRATEGIES = ("hybrid", "resize")
KNOWN_RULES = ("official", "solid")
DEFAULT_MAX_SIDE = 1600  # official MAX_SIZE_H / MAX_SIZE_W
MULTIPLE = 32  # five stride-2 downsamplings in both networks
_SOLID_EPS = 1e-6
# The official trimap's uint8 levels; skimage resizes them as level / 255 in float64.
_LEVELS = (0.0, 128.0, 255.0)


def check_known_rule(rule: str) -> str:
    if rule not in KNOWN_RULES:
        raise InvalidOptionError(f"unknown HYBRID known-pixel rule {rule!r}; valid rules: {', '.join(KNOWN_RULES)}")
    return rule


def check_max_side(max_side, who: str = "a pass") -> int:
    return checks.check_max_side(max_side, who, MULTIPLE)


def working_size(height: int, width: int, scale: float, max_side: int) -> tuple[int, int]:
    """The official pass size: ``int(side * scale)`` rounded down to a multiple of 32, clamped to ``max_side``.

    Each side is clamped on its own, as officially, and never below one 32-pixel cell.
    """
    cap = max(MULTIPLE, max_side - max_side % MULTIPLE)

    def one(side: int) -> int:
        scaled = int(side * scale)
        return min(cap, max(MULTIPLE, scaled - scaled % MULTIPLE))

    return one(height), one(width)


def resized_trimap_levels(classes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The official ``resize(trimap_uint8, size) * 255.0`` (float64) of argmax ``classes`` ``[B,1,h,w]`` (0/1/2)."""
    levels = torch.tensor(_LEVELS, dtype=torch.float64, device=classes.device) / 255.0
    values = levels[classes.long()]
    if size[0] >= values.shape[-2] and size[1] >= values.shape[-1]:
        resized = upsample_like_skimage_float64(values, size)
    else:
        # Only small images get here (a coarse pass clamped up to 32 px can be
        # larger than the image; the official code cannot run them at all):
        # skimage would also blur, which resize_like_skimage does, to float64 rounding.
        resized = resize_like_skimage(values, size)
    return resized * 255.0


def known_masks(classes: torch.Tensor, size: tuple[int, int], rule: str = "official") -> tuple[torch.Tensor, torch.Tensor]:
    """``(background, foreground)`` boolean masks ``[B,1,H,W]`` of the resized trimap under ``rule``."""
    check_known_rule(rule)
    levels = resized_trimap_levels(classes, size)
    if rule == "official":
        return levels == 0.0, levels == 255.0
    return levels <= 255.0 * _SOLID_EPS, levels >= 255.0 * (1.0 - _SOLID_EPS)


def fuse_known(background: torch.Tensor, foreground: torch.Tensor, local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official ``get_masked_local_from_global_test``: known pixels take 0 / 1, all others the local alpha.

    Returns ``(alpha, trimap)``, the trimap in mattezoo's encoding (0 / 0.5 / 1).
    """
    known = background | foreground
    alpha = torch.where(known, foreground.to(local.dtype), local)
    trimap = torch.where(known, foreground.to(torch.float32), torch.full_like(local, 0.5, dtype=torch.float32))
    return alpha, trimap


class StrategyResult(NamedTuple):
    alpha: torch.Tensor  # [B,1,H,W] fused matte in [0,1]
    trimap: torch.Tensor  # [B,1,H,W] the segmentation head's trimap: 0 / 0.5 / 1 (known pixels as the rule says)
    local: torch.Tensor  # [B,1,H,W] the matting head's alpha, resized to the image


# (image at a pass size, want the segmentation logits, want the matte) -> (logits or None, matte or None)
PassFn = Callable[[torch.Tensor, bool, bool], tuple[torch.Tensor | None, torch.Tensor | None]]


def run_strategy(image: torch.Tensor, strategy: str, run_pass: PassFn, *, who: str, dtype: torch.dtype,
                 segmentation_scale: float, matte_scale: float, resize_scale: float,
                 classes_of: Callable[[torch.Tensor], torch.Tensor],
                 fuse: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], max_side: int = DEFAULT_MAX_SIDE,
                 known_rule: str = "official") -> StrategyResult:
    """The official HYBRID or RESIZE test strategy of a two-headed matting network, for any image size.

    * ``"hybrid"``: the trimap from a pass at ``segmentation_scale`` (only the
      segmentation head asked for), the matte from a pass at ``matte_scale``
      (only the matting head); the trimap is resized to the image and its known
      pixels (``known_rule``) take 0 / 1, all others the resized matte.
    * ``"resize"``: one pass at ``resize_scale``; its fused matte (``fuse``) is
      resized to the image (the trimap returned is the one HYBRID would use).

    ``classes_of`` turns the segmentation logits into argmax classes
    (0 background, 1 transition, 2 foreground). ``image`` and the options are
    checked first (errors name the method, ``who``); the passes see the image
    in ``dtype``, the model's.
    """
    check_image(image, who)
    check_strategy(strategy, who)
    check_max_side(max_side, who)
    check_known_rule(known_rule)
    image = image.to(dtype)
    height, width = image.shape[-2:]

    def at(scale: float) -> torch.Tensor:
        return resize_like_skimage(image, working_size(height, width, scale, max_side))

    if strategy == "hybrid":
        logits, _ = run_pass(at(segmentation_scale), True, False)
        _, matte = run_pass(at(matte_scale), False, True)
        local = resize_like_skimage(matte.float(), (height, width))
        alpha, trimap = fuse_known(*known_masks(classes_of(logits), (height, width), known_rule), local)
    else:
        logits, matte = run_pass(at(resize_scale), True, True)
        alpha = resize_like_skimage(fuse(logits, matte).float(), (height, width))
        local = resize_like_skimage(matte.float(), (height, width))
        _, trimap = fuse_known(*known_masks(classes_of(logits), (height, width), known_rule), local)
    return StrategyResult(alpha.clamp(0.0, 1.0), trimap, local)


def check_strategy(strategy: str, who: str) -> str:
    if strategy not in STRATEGIES:
        raise InvalidOptionError(f"unknown {who} test strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    return strategy
