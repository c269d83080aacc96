"""Reading and checking images, trimaps and mattes.

Every public entry point goes through these checks, so bad input fails here
with a message that names the file or array and what is wrong with it, rather
than deep inside torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

TRIMAP_VALUES = (0, 128, 255)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _read(path: str | os.PathLike, flags: int) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{str(path)!r}: no such file")
    if not path.is_file():
        raise InputError(f"{str(path)!r} is not a file")
    # imdecode instead of imread: works with any path encoding and never prints.
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise InputError(f"{str(path)!r} is not a readable image (empty, truncated or not an image format OpenCV reads)")
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB image file as an ``H×W×3`` uint8 array (16-bit files are scaled down)."""
    img = _read(path, cv2.IMREAD_UNCHANGED)
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    channels = 1 if img.ndim == 2 else img.shape[2]
    kind = {1: "grayscale", 2: "grayscale+alpha", 4: "RGBA"}.get(channels, f"{channels}-channel")
    raise InputError(f"{str(path)!r} is a {kind} image; an RGB image with 3 channels is expected. Convert it to RGB first.")


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """A single-channel file (matte or trimap) as ``H×W`` uint8; colour files are refused."""
    img = _read(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        if img.shape[2] in (3, 4) and all(np.array_equal(img[..., 0], img[..., c]) for c in range(1, 3)):
            img = img[..., 0]  # a gray matte saved as RGB(A)
        else:
            raise InputError(f"{str(path)!r} has {img.shape[2]} differing channels; a single-channel (grayscale) file is expected")
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    return img


def read_matte(path: str | os.PathLike) -> np.ndarray:
    """An alpha matte file as ``H×W`` float32 in [0,1]."""
    return read_gray(path).astype(np.float32) / 255.0


def check_image(image, name: str = "image") -> np.ndarray:
    """Validate an ``H×W×3`` uint8 RGB array (or read it if ``image`` is a path)."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name} must be a path or an H×W×3 uint8 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{name} must have shape H×W×3 (RGB), got {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 RGB (0..255), got dtype {image.dtype}; use (x * 255).round().astype(np.uint8) for floats in [0,1]")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{name} is empty: shape {image.shape}")
    return image


def as_plane(array, shape: tuple[int, int] | None, name: str, expected: str) -> np.ndarray:
    """The ``H×W`` array behind a single-channel input (``H×W×1`` is squeezed), checked against ``shape``.

    ``expected`` completes "``name`` must be ..." in the type error.
    """
    if not isinstance(array, np.ndarray):
        raise InputError(f"{name} must be {expected}, got {type(array).__name__}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise InputError(f"{name} must have shape H×W, got {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise InputError(f"{name} is {array.shape[0]}×{array.shape[1]} but the image is {shape[0]}×{shape[1]}; they must match")
    return array


def check_trimap(trimap, shape: tuple[int, int], name: str = "trimap") -> np.ndarray:
    """Validate an ``H×W`` uint8 trimap with values 0/128/255 (or read it from a path)."""
    if isinstance(trimap, (str, os.PathLike)):
        trimap = read_gray(trimap)
    trimap = as_plane(trimap, shape, name, "a path or an H×W uint8 numpy array")
    if trimap.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 with values 0/128/255, got dtype {trimap.dtype}")
    values, counts = np.unique(trimap, return_counts=True)
    odd = [(int(v), int(c)) for v, c in zip(values, counts) if v not in TRIMAP_VALUES]
    if odd:
        shown = ", ".join(f"{v} ({c} px)" for v, c in odd[:6])
        raise InputError(f"{name} has values other than 0 (background), 128 (unknown) and 255 (foreground): {shown}")
    return trimap


def check_alpha(alpha, shape: tuple[int, int] | None = None, name: str = "alpha") -> np.ndarray:
    """Validate an ``H×W`` matte: float in [0,1] (or uint8 0..255, or a path); returns float32."""
    if isinstance(alpha, (str, os.PathLike)):
        alpha = read_matte(alpha)
    alpha = as_plane(alpha, shape, name, "a path or an H×W numpy array")
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) / 255.0
    if not np.issubdtype(alpha.dtype, np.floating):
        raise InputError(f"{name} must be float in [0,1] or uint8, got dtype {alpha.dtype}")
    if not np.isfinite(alpha).all():
        raise InputError(f"{name} contains {int((~np.isfinite(alpha)).sum())} NaN or infinite values")
    if alpha.size and (alpha.min() < 0 or alpha.max() > 1):
        raise InputError(f"{name} must lie in [0,1], got values in [{alpha.min():.4g}, {alpha.max():.4g}]")
    return alpha.astype(np.float32, copy=False)


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an ``H×W`` matte (float [0,1] or uint8) or an ``H×W×3/4`` RGB(A) uint8 image."""
    arr = np.asarray(array)
    if np.issubdtype(arr.dtype, np.floating):
        arr = (np.clip(arr, 0, 1) * 255.0).round().astype(np.uint8)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise InputError(f"could not encode an array of shape {arr.shape} as PNG")
    buf.tofile(str(path))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
