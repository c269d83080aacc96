"""GCA Matting's test-time procedure for images of any size (official ``demo.py`` and ``tester.py``).

Both official scripts run the network once at the original resolution:

* ``padding="test"`` (``tester.py`` with ``OriginScale``, the Composition-1k
  evaluation): an image whose sides are not both multiples of 32 is
  reflect-padded at the bottom and right up to the next multiples of 32;
  one whose sides already are is not padded;
* ``padding="demo"`` (``demo.py``, the script the README runs with the released
  ``gca-dist-all-data.pth``): a 32-pixel reflect border on every side, plus
  the bottom / right padding to multiples of 32 when needed.

Image and trimap are padded alike (numpy's ``"reflect"``, which mirrors
without repeating the edge pixel and keeps mirroring when the padding is
longer than the image). The padded trimap becomes the network's one-hot input;
the prediction is overwritten with 1 where it is foreground and 0 where it
is background, and cropped back. The official scripts then store the matte as
uint8 (``astype`` truncation); here it stays float.

``max_side`` guards memory: each GCA block compares every pair of 1/16-scale
positions, ``(H·W / 256)²`` scores per image, so larger images are refused
with an error that names the option.
"""

from __future__ import annotations

import torch

from mattezoo import checks
from mattezoo.errors import InputError, InvalidOptionError

MULTIPLE = 32  # the network's input multiple (five stride-2 stages)
DEMO_BORDER = 32  # demo.py's reflect border on every side
PADDINGS = ("test", "demo")
DEFAULT_MAX_SIDE = 2048


def check_padding(padding) -> str:
    if padding not in PADDINGS:
        raise InvalidOptionError(f"unknown GCA padding {padding!r}; valid: 'test' (official tester.py: bottom/right "
                                 f"to multiples of {MULTIPLE}), 'demo' (official demo.py: also a {DEMO_BORDER}-px border)")
    return padding


def reflect_indices(size: int, before: int, after: int, device=None) -> torch.Tensor:
    """Source indices of numpy's ``"reflect"`` padding of a ``size``-long axis (any padding length)."""
    index = torch.arange(-before, size + after, device=device)
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


def pad_reflect(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    rows = reflect_indices(x.shape[-2], top, bottom, x.device)
    cols = reflect_indices(x.shape[-1], left, right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def padding_of(height: int, width: int, padding: str) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the official test scripts for an image of this size."""
    extra_h, extra_w = (-height) % MULTIPLE, (-width) % MULTIPLE
    border = DEMO_BORDER if padding == "demo" else 0
    return border, border + extra_h, border, border + extra_w


def fill_known(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """The official known-region rule: 1 on the trimap's foreground, 0 on its background."""
    alpha = torch.where(trimap == 1, torch.ones_like(alpha), alpha)
    return torch.where(trimap == 0, torch.zeros_like(alpha), alpha)


def infer(model, image: torch.Tensor, trimap: torch.Tensor, padding: str, max_side: int) -> torch.Tensor:
    """Alpha ``[B,1,H,W]`` of ``image`` ``[B,3,H,W]`` in [0,1] and ``trimap`` (0/0.5/1), any size."""
    checks.check_image(image, "GCA")
    checks.check_trimap(trimap, image, "GCA")
    height, width = image.shape[-2:]
    if max(height, width) > max_side:
        raise InputError(f"image is {height}×{width}, larger than GCA's max_side={max_side}: the attention needs "
                         f"(H·W/256)² scores per image; downscale it or create the method with a larger max_side")
    top, bottom, left, right = padding_of(height, width, padding)
    dtype = model.input_dtype
    x = pad_reflect(image.to(dtype), top, bottom, left, right)
    t = pad_reflect(trimap.to(dtype), top, bottom, left, right)
    alpha = model(x, t)
    return alpha[..., top:top + height, left:left + width].float()
