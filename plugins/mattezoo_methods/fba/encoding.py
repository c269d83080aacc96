"""The inputs FBA's network is fed, built as the official test code builds them.

From mattezoo's trimap (``[B,1,H,W]``: 0 background, 0.5 unknown, 1 foreground)
and image (``[B,3,H,W]`` RGB in [0,1]):

* the two-channel trimap: channel 0 is 1 on definite background, channel 1 is
  1 on definite foreground (official ``dataloader.read_trimap``);
* the distance-transform encoding (official ``networks/transforms.trimap_transform``):
  for each of the two channels, ``d`` = the exact Euclidean distance of every
  pixel to the nearest pixel of that class, and three maps
  ``exp(-d² / (2 (s·L)²))`` for ``s`` = 0.02, 0.08, 0.16 with ``L`` = 320;
  channel order background ×3, then foreground ×3.
  The class pixels are found as the official code does: ``(1 - t) * 255``
  cast to uint8 is 0 (so a Lanczos-resized trimap's ringing is read the same
  way); a class that is absent makes its three maps 0;
* the image normalised with the ImageNet mean and standard deviation
  (official ``normalise_image``).

The official code takes the distance from OpenCV (``distanceTransform``,
``DIST_L2``, mask size 0: exact, in float32) and the Gaussians in float32.
Here the distance is SciPy's exact ``distance_transform_edt`` in float64 and
the maps are rounded to float32 at the end: OpenCV's result moves by ~1e-6
from call to call (its parallel rows), which a 50-layer network turns into
1e-4 differences between two runs on the same input (measured here).
The transform runs on the CPU, per image; tensors on other devices make a
round trip.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

DT_SCALES = (0.02, 0.08, 0.16)  # Gaussian widths as fractions of DT_LENGTH
DT_LENGTH = 320.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def two_channel_trimap(trimap: torch.Tensor) -> torch.Tensor:
    """``[B,1,H,W]`` 0/0.5/1 -> ``[B,2,H,W]``: (definite background, definite foreground) indicators."""
    return torch.cat(((trimap == 0), (trimap == 1)), dim=1).to(trimap.dtype)


def distance_maps(two_channel: np.ndarray) -> np.ndarray:
    """``H×W×2`` two-channel trimap (float) -> ``6×H×W`` float32 Gaussian distance maps (background, foreground)."""
    maps = []
    for channel in range(2):
        # The official test of class membership: (1 - t) * 255 truncates to uint8 0.
        outside = ((1 - two_channel[:, :, channel]) * 255).astype(np.uint8) != 0
        if outside.all():  # no pixel of the class: OpenCV's distance is ~1.8e19 there, every map exp(-inf) = 0
            maps += [np.zeros(outside.shape, np.float32)] * len(DT_SCALES)
            continue
        squared = ndimage.distance_transform_edt(outside) ** 2
        for scale in DT_SCALES:
            maps.append(np.exp(-squared / (2 * ((scale * DT_LENGTH) ** 2))).astype(np.float32))
    return np.array(maps)


def distance_encoding(two_channel: torch.Tensor) -> torch.Tensor:
    """``[B,2,H,W]`` two-channel trimap -> ``[B,6,H,W]`` distance maps, on the input's device and dtype."""
    planes = two_channel.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    maps = np.stack([distance_maps(plane) for plane in planes])
    return torch.from_numpy(maps).to(two_channel.device, two_channel.dtype)


def normalise_image(image: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of ``[B,3,H,W]`` RGB in [0,1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image - mean) / std
