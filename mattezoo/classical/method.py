"""The tensor-level object every classical method plugin returns from its factory.

``mattezoo.run_method`` calls it with ``image`` ``[B,3,H,W]`` in [0,1] and
``trimap`` ``[B,1,H,W]`` with 0 / 0.5 / 1. The classical estimators work on one
NumPy image at a time, so this class loops over the batch, converts, and
hands each pair to :meth:`estimate`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError


class TrimapPropagationMethod:
    """Base class: subclasses implement ``estimate(image, trimap) -> alpha`` on NumPy arrays."""

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
            raise InputError(f"image must be a [B,3,H,W] tensor, got {getattr(image, 'shape', type(image).__name__)}")
        if not isinstance(trimap, torch.Tensor) or trimap.ndim != 4 or trimap.shape[1] != 1:
            raise InputError(f"trimap must be a [B,1,H,W] tensor, got {getattr(trimap, 'shape', type(trimap).__name__)}")
        if trimap.shape[0] != image.shape[0] or trimap.shape[-2:] != image.shape[-2:]:
            raise InputError(f"trimap {tuple(trimap.shape)} does not match the image {tuple(image.shape)}")
        images = image.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
        trimaps = trimap.detach().to("cpu", torch.float64)[:, 0].numpy()
        alphas = [self.estimate(np.ascontiguousarray(i), np.ascontiguousarray(t)) for i, t in zip(images, trimaps)]
        return torch.from_numpy(np.stack(alphas)[:, None]).to(device=image.device, dtype=torch.float32)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"
