"""Running any matting object: ``predict`` for arrays and paths, ``run_method`` for tensors."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError, MattezooError
from .images import check_image, check_trimap
from .spec import MethodSpec


def spec_of(obj) -> MethodSpec:
    spec = getattr(obj, "mattezoo_spec", None)
    if not isinstance(spec, MethodSpec):
        raise InputError(
            f"{type(obj).__name__} is not a mattezoo method: pass a method name or an object from mattezoo.create_method()"
        )
    return spec


def trimap_to_tensor(trimap: np.ndarray, device=None) -> torch.Tensor:
    """uint8 0/128/255 ``H×W`` -> float ``[1,1,H,W]`` with 0, 0.5, 1 (the methods' trimap encoding)."""
    t = torch.from_numpy(np.ascontiguousarray(trimap)).to(device)
    out = torch.zeros(t.shape, dtype=torch.float32, device=t.device)
    out[t == 128] = 0.5
    out[t == 255] = 1.0
    return out[None, None]


def image_to_tensor(image: np.ndarray, device=None) -> torch.Tensor:
    """uint8 ``H×W×3`` RGB -> float ``[1,3,H,W]`` in [0,1]."""
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    return t.permute(2, 0, 1)[None].float().div_(255.0)


def run_method(obj, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
    """Run a matting object on tensors and check what it returns.

    ``image`` is ``[B,3,H,W]`` float in [0,1]; ``trimap`` is ``[B,1,H,W]``
    with 0/0.5/1, or ``None``. Objects with an ``infer`` method (for example a
    model with its own multi-scale strategy) are called through it; others are
    called directly after padding to ``spec.input_multiple`` (reflect) and are
    cropped back. Returns ``[B,1,H,W]`` float32 in [0,1].
    """
    spec = spec_of(obj)
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"image tensor must be [B,3,H,W], got {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("image tensor contains NaN or infinite values")
    if spec.needs_trimap and trimap is None:
        raise InputError(f"{spec.name!r} is a {spec.family} method and needs a trimap (values 0/128/255)")
    if not spec.needs_trimap and trimap is not None:
        raise InputError(f"{spec.name!r} is trimap-free and takes no trimap; call it without one")
    if trimap is not None and (trimap.ndim != 4 or trimap.shape[1] != 1 or trimap.shape[-2:] != image.shape[-2:] or trimap.shape[0] != image.shape[0]):
        raise InputError(f"trimap tensor must be [B,1,H,W] matching the image {tuple(image.shape)}, got {tuple(trimap.shape)}")
    height, width = image.shape[-2:]
    # no_grad rather than inference_mode: callers may keep using the result in autograd code.
    with torch.no_grad():
        if hasattr(obj, "infer"):
            alpha = obj.infer(image, trimap)
        else:
            alpha = _padded_call(obj, image, trimap, spec.input_multiple)
    if not isinstance(alpha, torch.Tensor) or tuple(alpha.shape) != (image.shape[0], 1, height, width):
        got = tuple(alpha.shape) if isinstance(alpha, torch.Tensor) else type(alpha).__name__
        raise MattezooError(f"method {spec.name!r} returned {got}, expected a tensor of shape {(image.shape[0], 1, height, width)}")
    if not torch.isfinite(alpha).all():
        raise MattezooError(f"method {spec.name!r} returned NaN or infinite alpha values")
    return alpha.float().clamp(0.0, 1.0)


def _padded_call(obj, image, trimap, multiple):
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        # Reflect padding needs pad < size; fall back to replicate for tiny inputs.
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
        if trimap is not None:
            trimap = F.pad(trimap, (0, pad_w, 0, pad_h), mode=mode)
    alpha = obj(image, trimap) if trimap is not None else obj(image)
    return alpha[..., :height, :width] if isinstance(alpha, torch.Tensor) else alpha


def _resolve(method, image, device, what: str = "method"):
    """(method object, checked image, device) for :func:`predict` and :func:`predict_trimap`."""
    if isinstance(method, str):
        from .factory import create_method

        method = create_method(method, **({"device": device} if device is not None else {}))
    spec_of(method)
    image = check_image(image)
    params = next(iter(method.parameters()), None) if isinstance(method, torch.nn.Module) else None
    if device is None:
        device = params.device if params is not None else torch.device("cpu")
    elif params is not None and torch.device(device).type != params.device.type:
        raise InputError(f"device={device!r} was asked for, but the {what}'s weights are on {params.device}; move it with .to({str(device)!r}) first")
    return method, image, device


def predict(method, image, trimap=None, *, device=None) -> np.ndarray:
    """The alpha matte of one image.

    :param method: a registered name (``"closed_form"``, ``"p3m_net.p3m10k"``)
        or an object from :func:`mattezoo.create_method`.
    :param image: an ``H×W×3`` uint8 RGB array, or the path of an image file.
    :param trimap: an ``H×W`` uint8 array with 0/128/255, or its path; needed by
        trimap-based and classical methods, refused by trimap-free ones. A
        trimap-free method can make one: :func:`predict_trimap`.
    :param device: where to run (``"cpu"``, ``"cuda"``); default: where the
        method's parameters are, or CPU.
    :return: ``H×W`` float32 alpha in [0,1].
    """
    method, image, device = _resolve(method, image, device)
    if trimap is not None:
        trimap = check_trimap(trimap, image.shape[:2])
    image_t = image_to_tensor(image, device)
    trimap_t = trimap_to_tensor(trimap, device) if trimap is not None else None
    alpha = run_method(method, image_t, trimap_t)
    return alpha[0, 0].cpu().numpy().astype(np.float32, copy=False)


def trimap_providers() -> list[str]:
    """Registered methods that make trimaps (``MethodSpec.provides_trimap``)."""
    from .registry import get_registry

    registry = get_registry()
    return [name for name in registry.names() if registry.get(name).provides_trimap]


def run_trimap(obj, image: torch.Tensor) -> torch.Tensor:
    """The trimap ``[B,1,H,W]`` (0 / 0.5 / 1) that a trimap-making method predicts for ``image`` ``[B,3,H,W]``."""
    spec = spec_of(obj)
    if not spec.provides_trimap or not hasattr(obj, "infer_trimap"):
        providers = ", ".join(trimap_providers()) or "none is registered"
        raise InputError(f"{spec.name!r} does not make trimaps; methods that do: {providers}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"image tensor must be [B,3,H,W], got {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("image tensor contains NaN or infinite values")
    with torch.no_grad():
        trimap = obj.infer_trimap(image)
    expected = (image.shape[0], 1, *image.shape[-2:])
    if not isinstance(trimap, torch.Tensor) or tuple(trimap.shape) != expected:
        got = tuple(trimap.shape) if isinstance(trimap, torch.Tensor) else type(trimap).__name__
        raise MattezooError(f"method {spec.name!r} returned a trimap of {got}, expected a tensor of shape {expected}")
    levels = (trimap == 0) | (trimap == 0.5) | (trimap == 1)
    if not bool(levels.all()):
        raise MattezooError(f"method {spec.name!r} returned a trimap with values other than 0, 0.5 and 1")
    return trimap.float()


def predict_trimap(method, image, *, device=None) -> np.ndarray:
    """The trimap a trimap-free method sees in one image, for a trimap-based method to refine.

    ``predict(gca, image, trimap=predict_trimap("p3m_net.p3m10k", image))``
    mattes a portrait with no hand-drawn trimap.

    :param method: a name or object of a method with ``provides_trimap``
        (P3M-Net's and GFM's segmentation decoders, for example).
    :param image: an ``H×W×3`` uint8 RGB array, or the path of an image file.
    :return: ``H×W`` uint8 trimap with 0 (background), 128 (unknown), 255 (foreground).
    """
    method, image, device = _resolve(method, image, device, "trimap method")
    trimap = run_trimap(method, image_to_tensor(image, device))
    return (trimap[0, 0] * 255.0).round().to(torch.uint8).cpu().numpy()
