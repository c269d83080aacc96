"""FBA's test procedure for images of any size (input checks: mattezoo.checks).

The official ``demo.pred`` (MarcoForte/FBA_Matting), per image:

1. the image and the two-channel trimap are resized with OpenCV's Lanczos-4
   filter to ``ceil(scale * side / 8) * 8`` per side (``scale_input``; scale 1
   officially, so a size that is already a multiple of 8 is left as it is);
   the distance maps are computed from the *resized* two-channel trimap;
2. one network pass;
3. the 7 output channels are resized back to the image size with
   ``cv2.resize(out, (w, h), cv2.INTER_LANCZOS4)``: the third positional
   argument of ``cv2.resize`` is ``dst``, not the interpolation, so this is
   OpenCV's default bilinear filter, and so it is here;
4. alpha is set to 0 on the trimap's background and to 1 on its foreground;
   F takes the image's colour where alpha is 1, B where alpha is 0.

One addition: ``max_side``. The official code always runs at scale 1 (and
needs a GPU with 11 GB at 1920×1080); here an image whose longer side exceeds
``max_side`` runs at ``scale = max_side / longer side`` by the same
``scale_input`` rule, and its outputs are resized back as in step 3.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from mattezoo import checks

MULTIPLE = 8  # the encoder's output stride
DEFAULT_MAX_SIDE = 2048


def check_max_side(max_side) -> int:
    """FBA's pass sides are multiples of 8, not 32, so it accepts a ``max_side`` down to 8."""
    return checks.check_max_side(max_side, "FBA", MULTIPLE)


def scaled_side(side: int, scale: float, cap: int) -> int:
    """The official ``scale_input`` size ``ceil(scale * side / 8) * 8``, never above ``cap`` (a multiple of 8)."""
    return min(cap, int(math.ceil(scale * side / MULTIPLE) * MULTIPLE))


def pass_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The size of the network pass for an image: scale 1, or less where the longer side exceeds ``max_side``."""
    cap = max(MULTIPLE, max_side // MULTIPLE * MULTIPLE)
    scale = min(1.0, cap / max(height, width))
    return scaled_side(height, scale, cap), scaled_side(width, scale, cap)


def _resize(planes: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """``H×W×C`` -> ``h×w×C`` with OpenCV (which keeps a 2-D result for one channel: restore it)."""
    out = cv2.resize(planes, (size[1], size[0]), interpolation=interpolation)
    return out.reshape(size[0], size[1], planes.shape[2])


def infer(model, image: torch.Tensor, trimap: torch.Tensor, max_side: int = DEFAULT_MAX_SIDE):
    """Alpha, F and B (an :class:`~.model.FBAOutput`) of ``image`` with ``trimap``, any size, by the official procedure."""
    from .model import FBAOutput, pin_known

    checks.check_image(image, "FBA")
    checks.check_trimap(trimap, image, "FBA")
    check_max_side(max_side)
    height, width = image.shape[-2:]
    size = pass_size(height, width, max_side)
    param = next(model.parameters())
    two_channel = torch.cat(((trimap == 0), (trimap == 1)), dim=1).to(torch.float64)
    images, twos = [], []
    # OpenCV works on H×W×C arrays; the official code resizes float64 image and trimap arrays.
    for picture, two in zip(image.detach().to("cpu", torch.float64), two_channel.cpu()):
        images.append(_resize(picture.permute(1, 2, 0).numpy(), size, cv2.INTER_LANCZOS4))
        twos.append(_resize(two.permute(1, 2, 0).numpy(), size, cv2.INTER_LANCZOS4))
    from .encoding import distance_maps, normalise_image

    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(param.device, torch.float32)  # noqa: E731
    image_pass, two_pass = as_tensor(images), as_tensor(twos)
    distance = torch.from_numpy(np.stack([distance_maps(t) for t in twos])).to(param.device, torch.float32)
    image_pass, two_pass, distance = (t.to(param.dtype) for t in (image_pass, two_pass, distance))
    with torch.no_grad():
        out = model.network(image_pass, two_pass, normalise_image(image_pass), distance)
    maps = torch.cat(out, 1).to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    back = np.stack([_resize(m, (height, width), cv2.INTER_LINEAR) for m in maps])
    back = torch.from_numpy(back).permute(0, 3, 1, 2).to(image.device)
    alpha = pin_known(back[:, :1], trimap.to(back.dtype))
    colours = image.to(back.dtype)
    fg = torch.where(alpha == 1, colours, back[:, 1:4])
    bg = torch.where(alpha == 0, colours, back[:, 4:7])
    return FBAOutput(alpha, fg, bg)
