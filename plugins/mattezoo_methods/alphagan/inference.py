"""AlphaGAN's input encoding and test strategies, for images of any size (input checks: mattezoo.checks).

Encoding (the re-implementation's test path, ``utils/Tester.py``): the RGB
image normalised with the ImageNet mean and std, the trimap as a fourth
channel holding the 8-bit trimap divided by 255 (0, 128/255, 1).

The authors released no test code. Two strategies:

* ``"pad"`` (default): the network is fully convolutional, so the whole image
  is run at its own size, padded at the bottom and right by reflection to the
  next multiple of 32 (replication where a side is shorter than its pad), and
  cropped back;
* ``"resize"``: the CDOTAD re-implementation's tester: the image and trimap
  are resized bilinearly to each side rounded *down* to a multiple of 32
  (at least 32), the matte is resized back bilinearly.

Either way the pass's known trimap pixels take their values, and at the end
every pixel the caller's trimap marks as foreground is 1 and as background 0,
exactly. A side over ``max_side`` is refused (``"pad"``: the pass runs at full
resolution) or capped (``"resize"``: the pass is shrunk to at most
``max_side``, the re-implementation's 6400 cap).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mattezoo import checks
from mattezoo.errors import InputError, InvalidOptionError

MULTIPLE = 32  # the test code's size multiple (the network itself needs 8: output stride 8)
NETWORK_MULTIPLE = 8
DEFAULT_MAX_SIDE = 6400
STRATEGIES = ("pad", "resize")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
UNKNOWN_CHANNEL = 128.0 / 255.0  # the 8-bit unknown level as the network sees it


def check_strategy(strategy) -> str:
    if strategy not in STRATEGIES:
        raise InvalidOptionError(f"unknown AlphaGAN strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    return strategy


def encode(image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """The network input ``[B,4,H,W]``: ImageNet-normalised RGB and the trimap channel (0, 128/255, 1).

    Other trimap values (the blends of a resized trimap in ``"resize"``) pass through unchanged.
    """
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    channel = torch.where(trimap == 0.5, trimap.new_tensor(UNKNOWN_CHANNEL), trimap).to(image.dtype)
    return torch.cat([(image - mean) / std, channel], dim=1)


def paste_known(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """``alpha`` on the unknown pixels, exactly 0 / 1 where ``trimap`` is exactly 0 / 1."""
    alpha = torch.where(trimap == 1.0, torch.ones_like(alpha), alpha)
    return torch.where(trimap == 0.0, torch.zeros_like(alpha), alpha)


def padded_size(height: int, width: int) -> tuple[int, int]:
    return MULTIPLE * -(-height // MULTIPLE), MULTIPLE * -(-width // MULTIPLE)


def resized_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The ``"resize"`` pass size: each side rounded down to a multiple of 32, at least 32, at most ``max_side``."""
    cap = max_side - max_side % MULTIPLE

    def side(s: int) -> int:
        return min(cap, max(MULTIPLE, s - s % MULTIPLE))

    return side(height), side(width)


def _pad(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # cv2 INTER_LINEAR's half-pixel centres


def infer(network_pass, image: torch.Tensor, trimap: torch.Tensor, strategy: str, max_side: int) -> torch.Tensor:
    """The matte ``[B,1,H,W]`` of ``image`` and ``trimap`` of any size.

    ``network_pass(image, trimap)`` runs the generator on sizes that are
    multiples of 32 and returns its raw ``[B,1,h,w]`` alpha.
    """
    checks.check_image(image, "AlphaGAN")
    checks.check_trimap(trimap, image, "AlphaGAN")
    check_strategy(strategy)
    checks.check_max_side(max_side, "AlphaGAN")
    height, width = image.shape[-2:]
    if strategy == "pad":
        if max(height, width) > max_side:
            raise InputError(f"image {height}×{width} has a side over max_side={max_side}; the 'pad' strategy runs "
                             "at full resolution: raise max_side if memory allows, or use strategy='resize'")
        size = padded_size(height, width)
        alpha = network_pass(_pad(image, *size), _pad(trimap, *size))[..., :height, :width]
    else:
        size = resized_size(height, width, max_side)
        small_trimap = _resize(trimap, size)
        # As in the re-implementation, the pass sees the resized trimap with its blends at class borders, and
        # only pixels still exactly 0 / 1 count as known in it.
        small = paste_known(network_pass(_resize(image, size), small_trimap), small_trimap)
        alpha = _resize(small, (height, width))
    return paste_known(alpha.clamp(0.0, 1.0), trimap)

