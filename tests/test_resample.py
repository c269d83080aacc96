"""mattezoo.resample: ``skimage.transform.resize`` in torch, and its bit-exact float64 upsampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mattezoo.resample import resize_like_skimage, upsample_like_skimage_float64


@pytest.mark.parametrize("size,out", [((70, 45), (32, 32)), ((32, 64), (70, 45)), ((100, 37), (33, 97)), ((1, 5), (3, 9))])
def test_resize_matches_skimage(size, out):
    transform = pytest.importorskip("skimage.transform")
    image = torch.rand(*size, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    expected = transform.resize(image.numpy(), out)  # H×W×3, as the official code resizes an RGB image
    ours = resize_like_skimage(image.permute(2, 0, 1)[None], out)[0].permute(1, 2, 0)
    torch.testing.assert_close(ours, torch.from_numpy(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("size,out", [((21, 15), (64, 45)), ((32, 32), (97, 101)), ((5, 7), (5, 30)), ((1, 5), (3, 9))])
def test_trimap_upsampling_is_bit_for_bit_skimage(size, out):
    transform = pytest.importorskip("skimage.transform")
    classes = torch.randint(0, 3, (1, 1, *size), generator=torch.Generator().manual_seed(size[0]))
    classes[..., : size[0] // 2, :] = 2  # solid regions: where rounding decides "exactly 255"
    trimap = np.array([0, 128, 255], np.uint8)[classes[0, 0].numpy()]
    expected = transform.resize(trimap, out) * 255.0
    levels = torch.tensor([0.0, 128.0, 255.0], dtype=torch.float64)[classes] / 255.0
    ours = upsample_like_skimage_float64(levels, out)[0, 0] * 255.0
    assert np.array_equal(ours.numpy(), expected)
