"""IndexNet Matting's input encoding and the official test procedure, for images of any size.

Input (official ``demo.py`` / ``hldataset.Normalize``): the RGB image and the
0..255 trimap are stacked into four channels, scaled by 1/255 and normalised
with mean ``(0.485, 0.456, 0.406, 0)`` and std ``(0.229, 0.224, 0.225, 1)``:
ImageNet normalisation for the colours, the trimap channel is the trimap / 255
(0, 128/255, 1).

Test procedure (official ``demo.py``, ``utils.image_alignment`` and the
validation of ``hltrainval.py``):

1. the normalised 4-channel image is *resized* (not padded) to the next
   multiple of the output stride (32) on each side: OpenCV ``INTER_CUBIC`` for
   the colour channels, ``INTER_NEAREST`` for the trimap channel;
2. one network pass;
3. the raw prediction is resized back to the image size with ``INTER_CUBIC``
   and clipped to [0,1];
4. pixels the trimap marks as known take its value (0 or 1), the unknown ones
   keep the prediction.

The two OpenCV resizes are restated here in torch (:func:`resize_cubic_cv2`,
:func:`resize_nearest_cv2`: OpenCV's source coordinates, its cubic kernel with
A = -0.75 in float32 and its replicated border), so they run batched on any
device. One addition: ``max_side`` caps the working size (the official code has
no cap); a larger image is first scaled down so its longer side fits, which
changes nothing for images within the cap. The official code saves the matte as
uint8; here it stays float.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mattezoo import checks

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
UNKNOWN_LEVEL = 128.0 / 255.0  # the trimap channel of an unknown pixel: uint8 128, scaled by 1/255
DEFAULT_MAX_SIDE = 2048
CUBIC_A = -0.75  # OpenCV's bicubic kernel parameter


# --- input checks and encoding ------------------------------------------------------------


def trimap_channel(trimap: torch.Tensor) -> torch.Tensor:
    """mattezoo's 0 / 0.5 / 1 trimap as the official fourth input channel: uint8 0 / 128 / 255 divided by 255."""
    return torch.where(trimap == 0.5, torch.full_like(trimap, UNKNOWN_LEVEL), trimap)


def encode_input(image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """``[B,3,H,W]`` image in [0,1] and ``[B,1,H,W]`` trimap -> the official normalised ``[B,4,H,W]`` network input."""
    mean = torch.tensor(IMAGE_MEAN, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return torch.cat(((image - mean) / std, trimap_channel(trimap).to(image.dtype)), dim=1)


# --- OpenCV's resizes in torch ------------------------------------------------------------


def _cubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``[out, 4]`` and float32 weights ``[out, 4]`` of OpenCV's INTER_CUBIC along one axis."""
    scale = 1.0 / (out_size / in_size)  # OpenCV: 1 / inv_scale, in double
    fx = ((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx)
    x = (fx - sx).astype(np.float32)
    a = np.float32(CUBIC_A)
    one = np.float32(1.0)
    # OpenCV's interpolateCubic, in float32 arithmetic as it computes it.
    w0 = ((a * (x + one) - np.float32(5) * a) * (x + one) + np.float32(8) * a) * (x + one) - np.float32(4) * a
    w1 = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + one
    w2 = ((a + np.float32(2)) * (one - x) - (a + np.float32(3))) * (one - x) * (one - x) + one
    w3 = one - w0 - w1 - w2
    index = sx.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    return np.clip(index, 0, in_size - 1), np.stack([w0, w1, w2, w3], axis=1)


def _cubic_axis(x: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    in_size = x.shape[dim]
    if in_size == out_size:  # OpenCV copies; the taps would be (0, 1, 0, 0) anyway
        return x
    index, weights = _cubic_taps(in_size, out_size)
    index = torch.from_numpy(index).to(x.device)
    weights = torch.from_numpy(weights).to(device=x.device, dtype=x.dtype)
    shape = [1] * x.ndim
    shape[dim] = out_size
    out = None
    for k in range(4):  # left to right, as OpenCV sums the four taps
        term = x.index_select(dim, index[:, k]) * weights[:, k].view(shape)
        out = term if out is None else out + term
    return out


def resize_cubic_cv2(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``cv2.resize(..., interpolation=INTER_CUBIC)`` of ``[..., H, W]`` to ``size`` = ``(height, width)``.

    OpenCV resizes along each row first (horizontal pass), then combines rows
    (vertical pass); the same order here keeps the float32 rounding alike.
    """
    return _cubic_axis(_cubic_axis(x, size[1], x.ndim - 1), size[0], x.ndim - 2)


def _nearest_index(in_size: int, out_size: int) -> list[int]:
    step = 1.0 / (out_size / in_size)  # OpenCV's ifx, in double
    return [min(math.floor(i * step), in_size - 1) for i in range(out_size)]


def resize_nearest_cv2(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``cv2.resize(..., interpolation=INTER_NEAREST)`` of ``[..., H, W]``: source pixel ``floor(dst * in / out)``."""
    rows = torch.tensor(_nearest_index(x.shape[-2], size[0]), device=x.device)
    cols = torch.tensor(_nearest_index(x.shape[-1], size[1]), device=x.device)
    return x.index_select(x.ndim - 2, rows).index_select(x.ndim - 1, cols)


# --- the test procedure -------------------------------------------------------------------


def aligned_size(height: int, width: int, multiple: int, max_side: int) -> tuple[int, int]:
    """The official working size (each side rounded up to ``multiple``), scaled down first if it would pass ``max_side``."""
    cap = max(multiple, max_side - max_side % multiple)

    def up(side: int) -> int:
        return max(multiple, -(-side // multiple) * multiple)

    if max(up(height), up(width)) > cap:
        scale = cap / max(height, width)
        height, width = max(1, int(height * scale)), max(1, int(width * scale))
    return up(height), up(width)


def infer(model, image: torch.Tensor, trimap: torch.Tensor, max_side: int = DEFAULT_MAX_SIDE) -> torch.Tensor:
    """Alpha ``[B,1,H,W]`` of ``image`` ``[B,3,H,W]`` in [0,1] and ``trimap`` (0 / 0.5 / 1), any size, by the official procedure."""
    checks.check_image(image, "IndexNet")
    checks.check_trimap(trimap, image, "IndexNet")
    checks.check_max_side(max_side, "IndexNet")
    height, width = image.shape[-2:]
    dtype = next(model.parameters()).dtype
    x = encode_input(image.to(dtype), trimap.to(dtype))
    size = aligned_size(height, width, model.output_stride, max_side)
    x = torch.cat((resize_cubic_cv2(x[:, :3], size), resize_nearest_cv2(x[:, 3:], size)), dim=1)
    raw = model.forward_network(x)
    alpha = resize_cubic_cv2(raw.float(), (height, width)).clamp(0.0, 1.0)
    trimap = trimap.float()
    return torch.where(trimap == 0.5, alpha, trimap)
