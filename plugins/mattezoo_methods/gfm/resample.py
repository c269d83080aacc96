"""The official test code's resampling, in torch: ``skimage.transform.resize`` with its defaults.

GFM's ``core/test.py`` resizes the image for each pass, and the glance trimap
and the focus/fusion mattes back to the image, with
``skimage.transform.resize(x, size)``: bilinear (order 1) on pixel centres,
``reflect`` borders (mirror about the edge pixel: ``c b | a b c``), a Gaussian
pre-filter when a side shrinks (``sigma = max(0, (in/out - 1) / 2)``,
truncated at 4 sigma), and the result clipped to the input's range.
:func:`skimage_resize` does that on the tensor's device, in its dtype.

HYBRID keeps a pixel as known only where the resized uint8 trimap, in
float64, *equals* 0 or 255; the outcome depends on the last bit of scipy's
arithmetic, so :func:`upsample_float64_like_scipy` repeats that arithmetic
operation for operation (per-axis weights ``1 - t`` and ``1 - (1 - t)``,
products ``(value * wy) * wx`` summed in raster order, no fused multiply-add).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    """Integer positions folded into ``[0, size)`` by reflection about the edge pixels."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


def _blur(x: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    radius = int(_TRUNCATE * sigma + 0.5)
    if sigma <= 0 or radius == 0:
        return x
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=x.device)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    taps = (taps / taps.sum()).to(x.dtype)
    padded = x.index_select(dim, _mirror(torch.arange(-radius, x.shape[dim] + radius, device=x.device), x.shape[dim]))
    channels = x.shape[1]
    kernel_shape = (channels, 1, -1, 1) if dim == 2 else (channels, 1, 1, -1)
    return F.conv2d(padded, taps.reshape(1, 1, -1).expand(channels, 1, -1).reshape(kernel_shape), groups=channels)


def _interpolate(x: torch.Tensor, out: int, dim: int) -> torch.Tensor:
    size = x.shape[dim]
    if size == out:
        return x
    src = (torch.arange(out, dtype=torch.float64, device=x.device) + 0.5) * (size / out) - 0.5
    low = torch.floor(src)
    t = (src - low).to(x.dtype)
    low = low.long()
    shape = [1, 1, 1, 1]
    shape[dim] = out
    t = t.reshape(shape)
    return x.index_select(dim, _mirror(low, size)) * (1 - t) + x.index_select(dim, _mirror(low + 1, size)) * t


def skimage_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``skimage.transform.resize`` of each image of ``x`` ``[B,C,H,W]`` (float) to ``size``."""
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return x
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    if out_h < in_h or out_w < in_w:  # skimage anti-aliases as soon as one side shrinks
        x = _blur(x, max(0.0, (in_h / out_h - 1) / 2), dim=2)
        x = _blur(x, max(0.0, (in_w / out_w - 1) / 2), dim=3)
    x = _interpolate(_interpolate(x, out_h, dim=2), out_w, dim=3)
    return torch.maximum(torch.minimum(x, high), low)


def _scipy_taps(size: int, out: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and float64 weights of ``ndimage.zoom(order=1, mode="mirror", grid_mode=True)`` on one axis.

    For upsampling the source coordinate stays within half a pixel of the
    image: scipy mirrors a coordinate below 0 to ``-c`` but leaves one in
    ``(size - 1, size)`` alone (its second tap is then mirrored instead), and
    the two give different last bits.
    """
    coord = (torch.arange(out, dtype=torch.float64, device=device) + 0.5) * (size / out) - 0.5
    coord = torch.where(coord < 0, -coord, coord) if size > 1 else torch.zeros_like(coord)
    start = torch.floor(coord)
    w0 = 1.0 - (coord - start)
    w1 = 1.0 - w0
    start = start.long()
    return _mirror(start, size), _mirror(start + 1, size), w0, w1


def upsample_float64_like_scipy(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``skimage.transform.resize`` of float64 ``[B,1,h,w]`` to a ``size`` no smaller on either side, bit for bit."""
    y0, y1, wy0, wy1 = _scipy_taps(values.shape[-2], size[0], values.device)
    x0, x1, wx0, wx1 = _scipy_taps(values.shape[-1], size[1], values.device)
    wy0, wy1 = wy0.reshape(1, 1, -1, 1), wy1.reshape(1, 1, -1, 1)
    wx0, wx1 = wx0.reshape(1, 1, 1, -1), wx1.reshape(1, 1, 1, -1)
    top, bottom = values.index_select(2, y0), values.index_select(2, y1)
    out = (top.index_select(3, x0) * wy0) * wx0
    out = out + (top.index_select(3, x1) * wy0) * wx1
    out = out + (bottom.index_select(3, x0) * wy1) * wx0
    out = out + (bottom.index_select(3, x1) * wy1) * wx1
    low = values.amin(dim=(1, 2, 3), keepdim=True)
    high = values.amax(dim=(1, 2, 3), keepdim=True)
    return torch.maximum(torch.minimum(out, high), low)
