"""HYBRID's known-pixel rules against skimage itself, on many trimaps and sizes (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mattezoo.errors import InvalidOptionError
from mattezoo.hybrid import known_masks, resized_trimap_levels

skimage_transform = pytest.importorskip("skimage.transform")


def blocky_classes(rng: np.random.Generator, height: int, width: int, block: int) -> np.ndarray:
    """A trimap-like class map (0/1/2) made of solid blocks, as a segmentation head gives."""
    coarse = rng.integers(0, 3, size=(height // block + 1, width // block + 1))
    return np.kron(coarse, np.ones((block, block), dtype=np.int64))[:height, :width]


def official_levels(classes: np.ndarray, size) -> np.ndarray:
    """The official code: uint8 0/128/255 trimap, skimage resize (float64), times 255."""
    trimap = np.array([0, 128, 255], dtype=np.uint8)[classes]
    return skimage_transform.resize(trimap, size) * 255.0


CASES = [  # (low-res size, image size): HYBRID's ½-scale pass and odd image sizes, clamped sides, square blocks
    ((32, 32), (70, 45)), ((32, 32), (64, 64)), ((32, 64), (65, 129)), ((64, 96), (141, 203)),
    ((96, 64), (199, 131)), ((256, 480), (540, 960)), ((32, 32), (32, 77)), ((64, 32), (128, 64)),
]


@pytest.mark.parametrize("low,size", CASES)
def test_official_rule_is_skimage_bit_for_bit(low, size):
    rng = np.random.default_rng(sum(low) + sum(size))
    classes = np.stack([blocky_classes(rng, *low, block=b) for b in (1, 5, 8)])
    ours = resized_trimap_levels(torch.from_numpy(classes)[:, None], size)[:, 0].numpy()
    expected = np.stack([official_levels(c, size) for c in classes])
    np.testing.assert_array_equal(ours, expected)  # every float64 value, not only the masks
    background, foreground = known_masks(torch.from_numpy(classes)[:, None], size, "official")
    np.testing.assert_array_equal(background[:, 0].numpy(), expected == 0)
    np.testing.assert_array_equal(foreground[:, 0].numpy(), expected == 255)


def test_solid_rule_counts_rounding_noise_as_known_and_nothing_else():
    rng = np.random.default_rng(7)
    classes = np.stack([blocky_classes(rng, 64, 96, block=8) for _ in range(2)])
    size = (141, 203)
    expected = np.stack([official_levels(c, size) for c in classes])
    background, foreground = known_masks(torch.from_numpy(classes)[:, None], size, "solid")
    np.testing.assert_array_equal(background[:, 0].numpy(), expected <= 255e-6)
    np.testing.assert_array_equal(foreground[:, 0].numpy(), expected >= 255 * (1 - 1e-6))
    official_bg, official_fg = known_masks(torch.from_numpy(classes)[:, None], size, "official")
    # Solid keeps every officially known pixel, plus the ones that miss 255 by rounding only.
    assert bool((official_fg <= foreground).all()) and bool((official_bg <= background).all())
    extra = (foreground & ~official_fg).sum().item()
    assert extra > 0
    assert np.all(np.abs(expected[(foreground & ~official_fg)[:, 0].numpy()] - 255) < 1e-9)


def test_bad_rule_names_the_valid_ones():
    with pytest.raises(InvalidOptionError, match="valid rules: official, solid"):
        known_masks(torch.zeros(1, 1, 4, 4, dtype=torch.long), (8, 8), "exact")
