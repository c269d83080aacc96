"""Helpers for testing the official HYBRID / RESIZE strategies of two-headed networks (P3M-Net, GFM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


class PassRecorder:
    """Wraps ``inference_maps`` to record the size, input, heads asked for and outputs of every pass."""

    def __init__(self, net):
        self.sizes, self.inputs, self.asked, self.outputs = [], [], [], []
        self.original = net.inference_maps

    def __call__(self, image, **asked):
        self.sizes.append(tuple(image.shape[-2:]))
        self.inputs.append(image)
        self.asked.append(asked)
        self.outputs.append(self.original(image, **asked))
        return self.outputs[-1]


def skimage_reference(x: torch.Tensor, size) -> torch.Tensor:
    """The official code's resampling, by skimage itself (float64, one image and channel at a time)."""
    transform = pytest.importorskip("skimage.transform")
    planes = x.detach().double().numpy()
    return torch.from_numpy(np.array([[transform.resize(p, size) for p in image] for image in planes]))
