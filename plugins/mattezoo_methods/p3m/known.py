"""Which pixels of HYBRID's resized trimap count as known: the official rule, bit for bit, and a tolerant one.

The official test code (JizhiziLi/P3M ``core/test.py``, ``util.py``) turns the
½-scale pass's argmax into a uint8 trimap (0 / 128 / 255), resizes it to the
image with ``skimage.transform.resize`` (float64: ``uint8 / 255``, bilinear,
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

import torch

from mattezoo.errors import InvalidOptionError

from .resample import resize_like_skimage

KNOWN_RULES = ("official", "solid")
_SOLID_EPS = 1e-6
# The official trimap's uint8 levels; skimage resizes them as level / 255 in float64.
_LEVELS = (0.0, 128.0, 255.0)


def check_known_rule(rule: str) -> str:
    if rule not in KNOWN_RULES:
        raise InvalidOptionError(f"unknown HYBRID known-pixel rule {rule!r}; valid rules: {', '.join(KNOWN_RULES)}")
    return rule


def _mirror_coordinate(cc: torch.Tensor, size: int) -> torch.Tensor:
    """scipy ndimage's ``map_coordinate`` for ``mode="mirror"`` (``d c b | a b c d``), step for step."""
    if size <= 1:
        return torch.zeros_like(cc)
    period = float(2 * size - 2)
    low = period * torch.trunc(-cc / period) + cc
    low = torch.where(low <= 1 - size, low + period, -low)
    high = cc - period * torch.trunc(cc / period)
    high = torch.where(high >= size, period - high, high)
    return torch.where(cc < 0, low, torch.where(cc > size - 1, high, cc))


def _mirror_index(index: torch.Tensor, size: int) -> torch.Tensor:
    if size <= 1:
        return torch.zeros_like(index)
    period = 2 * size - 2
    index = torch.where(index < 0, -index, index)
    return torch.where(index >= size, period - index, index)


def zoom_taps(in_size: int, out_size: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per output position along one axis: the two source indices and their float64 weights, as scipy computes them."""
    zoom = in_size / out_size  # np.divide of the two sizes: a float64 division
    cc = (torch.arange(out_size, dtype=torch.float64, device=device) + 0.5) * zoom - 0.5
    cc = _mirror_coordinate(cc, in_size)
    start = torch.floor(cc)
    w0 = 1.0 - (cc - start)
    w1 = 1.0 - w0  # scipy: the last weight is 1 minus the others
    start = start.long()
    return _mirror_index(start, in_size), _mirror_index(start + 1, in_size), w0, w1


def upsample_like_skimage_float64(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``skimage.transform.resize(values, size)`` for float64 ``[B,1,h,w]`` with ``size >= (h, w)``, bit for bit."""
    height, width = size
    in_h, in_w = values.shape[-2:]
    y0, y1, wy0, wy1 = zoom_taps(in_h, height, values.device)
    x0, x1, wx0, wx1 = zoom_taps(in_w, width, values.device)
    wy0, wy1 = wy0.reshape(1, 1, -1, 1), wy1.reshape(1, 1, -1, 1)
    wx0, wx1 = wx0.reshape(1, 1, 1, -1), wx1.reshape(1, 1, 1, -1)
    top, bottom = values.index_select(2, y0), values.index_select(2, y1)
    # Separate multiplies and adds (no fused multiply-add), in scipy's order.
    out = (top.index_select(3, x0) * wy0) * wx0
    out = out + (top.index_select(3, x1) * wy0) * wx1
    out = out + (bottom.index_select(3, x0) * wy1) * wx0
    out = out + (bottom.index_select(3, x1) * wy1) * wx1
    low = values.amin(dim=(1, 2, 3), keepdim=True)
    high = values.amax(dim=(1, 2, 3), keepdim=True)
    return torch.maximum(torch.minimum(out, high), low)  # skimage clips to the input's range


def resized_trimap_levels(classes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The official ``resize(trimap_uint8, size) * 255.0`` (float64) of argmax ``classes`` ``[B,1,h,w]`` (0/1/2)."""
    levels = torch.tensor(_LEVELS, dtype=torch.float64, device=classes.device) / 255.0
    values = levels[classes.long()]
    if size[0] >= values.shape[-2] and size[1] >= values.shape[-1]:
        resized = upsample_like_skimage_float64(values, size)
    else:
        # Only images under 64 px get here (their ½-scale pass is clamped up
        # to 32 px, which the official code cannot run at all): skimage would
        # also blur, which resize_like_skimage does, to float64 rounding.
        resized = resize_like_skimage(values, size)
    return resized * 255.0


def known_masks(classes: torch.Tensor, size: tuple[int, int], rule: str = "official") -> tuple[torch.Tensor, torch.Tensor]:
    """``(background, foreground)`` boolean masks ``[B,1,H,W]`` of the resized trimap under ``rule``."""
    check_known_rule(rule)
    levels = resized_trimap_levels(classes, size)
    if rule == "official":
        return levels == 0.0, levels == 255.0
    return levels <= 255.0 * _SOLID_EPS, levels >= 255.0 * (1.0 - _SOLID_EPS)
