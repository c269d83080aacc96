"""The shared tensor input checks of the learned methods (mattezoo.checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mattezoo import checks, hybrid
from mattezoo.errors import InputError, InvalidOptionError

VALID = r"valid values: 0 \(background\), 0\.5 \(unknown\), 1 \(foreground\)"


def image(batch=1, height=8, width=6, **kw):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0), **kw)


def trimap(batch=1, height=8, width=6, **kw):
    levels = torch.tensor([0.0, 0.5, 1.0], **kw)
    index = torch.arange(batch * height * width).remainder(3).view(batch, 1, height, width)
    return levels[index]


# --- check_image -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_image_accepts_float_rgb_in_unit_range(dtype):
    checks.check_image(image(2, dtype=torch.float32).to(dtype), "M")
    checks.check_image(torch.zeros(1, 3, 1, 1, dtype=dtype), "M")
    checks.check_image(torch.ones(1, 3, 1, 1, dtype=dtype), "M")


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.zeros((1, 3, 4, 4), np.float32), r"^M takes a \[B,3,H,W\] float tensor in \[0,1\], got ndarray$"),
        (None, r"^M takes .*got NoneType$"),
        (torch.rand(1, 1, 4, 4), r"^M takes an RGB image tensor \[B,3,H,W\], got shape \(1, 1, 4, 4\)$"),
        (torch.rand(3, 4, 4), r"^M takes an RGB image tensor \[B,3,H,W\], got shape \(3, 4, 4\)$"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), r"^M takes a float image in \[0,1\], got dtype torch\.uint8; divide uint8"),
        (torch.rand(1, 3, 0, 4), r"^M: the image tensor is empty: shape \(1, 3, 0, 4\)$"),
        (torch.rand(0, 3, 4, 4), r"^M: the image tensor is empty"),
        (torch.full((1, 3, 4, 4), float("nan")), r"^M: the image tensor contains NaN or infinite values$"),
        (torch.full((1, 3, 4, 4), float("-inf")), r"^M: the image tensor contains NaN or infinite values$"),
        (torch.full((1, 3, 4, 4), 2.0), r"^M takes image values in \[0,1\], got values in \[2, 2\]; divide uint8"),
        (torch.full((1, 3, 4, 4), -0.5), r"^M takes image values in \[0,1\], got values in \[-0\.5, -0\.5\]"),
    ],
)
def test_image_refusals_name_the_method_the_problem_and_the_valid_form(bad, message):
    with pytest.raises(InputError, match=message):
        checks.check_image(bad, "M")


def test_hybrid_still_exports_check_image():
    assert hybrid.check_image is checks.check_image


# --- check_trimap ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_trimap_accepts_the_three_levels_in_any_float_dtype(dtype):
    checks.check_trimap(trimap(2, dtype=dtype), image(2), "M")
    checks.check_trimap(torch.full((1, 1, 8, 6), 0.5, dtype=dtype), image(), "M")


@pytest.mark.parametrize(
    "bad,message",
    [
        (None, r"^M is trimap-based and needs a trimap \[B,1,H,W\] with 0 \(background\), 0\.5 \(unknown\), 1 \(foreground\)$"),
        (np.zeros((1, 1, 8, 6), np.float32), r"^M takes a trimap tensor \[B,1,H,W\] with 0 / 0\.5 / 1, got ndarray$"),
        (torch.zeros(1, 8, 6), r"^M takes a trimap tensor \[B,1,H,W\], got shape \(1, 8, 6\)$"),
        (torch.zeros(1, 2, 8, 6), r"^M takes a trimap tensor \[B,1,H,W\], got shape \(1, 2, 8, 6\)$"),
        (torch.zeros(1, 1, 8, 5), r"^M: the trimap \(1, 1, 8, 5\) does not match the image \(1, 3, 8, 6\); it must be \(1, 1, 8, 6\)"),
        (torch.zeros(1, 1, 7, 6), r"does not match the image .*batch size, height and width"),
        (torch.zeros(2, 1, 8, 6), r"^M: the trimap \(2, 1, 8, 6\) does not match the image"),
        (torch.zeros(1, 1, 8, 6, dtype=torch.uint8), r"^M takes a float trimap \(a float tensor with 0/0\.5/1\), got dtype torch\.uint8; map uint8 0/128/255"),
        (torch.full((1, 1, 8, 6), float("nan")), rf"^M: the trimap contains NaN or infinite values; {VALID}$"),
        (torch.full((1, 1, 8, 6), float("inf")), rf"^M: the trimap contains NaN or infinite values; {VALID}$"),
        (torch.full((1, 1, 8, 6), 0.25), rf"^M: the trimap holds 48 odd value\(s\) \(0\.25\); {VALID}$"),
        (torch.full((1, 1, 8, 6), 255.0), rf"^M: the trimap holds 48 odd value\(s\) \(255\); {VALID}$"),
    ],
)
def test_trimap_refusals_name_the_method_the_problem_and_the_valid_values(bad, message):
    with pytest.raises(InputError, match=message):
        checks.check_trimap(bad, image(), "M")


def test_trimap_odd_values_are_counted_and_listed_in_order():
    t = trimap()
    t[0, 0, 0, :3] = torch.tensor([0.7, 0.2, 0.7])
    with pytest.raises(InputError, match=rf"holds 3 odd value\(s\) \(0\.2, 0\.7\); {VALID}"):
        checks.check_trimap(t, image(), "M")


def test_trimap_lists_at_most_five_odd_values():
    t = trimap()
    t[0, 0, 0, :6] = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.6, 0.7])
    with pytest.raises(InputError, match=r"holds 6 odd value\(s\) \(0\.1, 0\.2, 0\.3, 0\.4, 0\.6\);"):
        checks.check_trimap(t, image(), "M")


def test_trimap_on_another_device_is_refused():
    # The meta device stands in for a second device on a CPU-only machine; the check never reads its values.
    with pytest.raises(InputError, match=r"^M: the trimap is on meta but the image is on cpu; put both on one device$"):
        checks.check_trimap(torch.zeros(1, 1, 8, 6, device="meta"), image(), "M")


# --- check_max_side --------------------------------------------------------------------------


@pytest.mark.parametrize("value,multiple", [(32, 32), (33, 32), (4096, 32), (8, 8), (16, 16)])
def test_max_side_returns_ints_at_or_above_the_multiple(value, multiple):
    assert checks.check_max_side(value, "M", multiple) == value


@pytest.mark.parametrize("value,multiple", [(31, 32), (0, 32), (-64, 32), (7, 8), (True, 1), (512.0, 32), ("512", 32), (None, 32)])
def test_max_side_refusals_name_the_minimum_and_the_method(value, multiple):
    with pytest.raises(InvalidOptionError) as info:
        checks.check_max_side(value, "M", multiple)
    assert str(info.value) == f"max_side must be an int >= {multiple} (the longest image side M runs), got {value!r}"


def test_max_side_defaults_to_a_multiple_of_32():
    assert checks.check_max_side(32, "M") == 32
    with pytest.raises(InvalidOptionError, match=r"^max_side must be an int >= 32 "):
        checks.check_max_side(16, "M")


def test_hybrid_max_side_keeps_its_signature_and_prefix():
    assert hybrid.check_max_side(64) == 64
    with pytest.raises(InvalidOptionError, match=r"^max_side must be an int >= 32 \(the longest image side a pass runs\), got 16$"):
        hybrid.check_max_side(16)
    with pytest.raises(InvalidOptionError, match=r"side P3M-Net runs"):
        hybrid.check_max_side(16, "P3M-Net")
