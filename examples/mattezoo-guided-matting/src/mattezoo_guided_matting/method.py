"""The ``guided_matting`` method: colour-line alpha from local samples, refined by a guided filter.

1. The trimap gives the known regions: 1 is foreground, 0 is background.
2. For every pixel, the mean colour of the known foreground pixels nearby
   (``F``) and of the known background pixels nearby (``B``) is taken from
   the smallest window (``sample_radius``, doubled until one is found) that
   holds any.
3. The initial alpha projects the pixel's colour onto the line from ``B`` to
   ``F`` (the compositing equation ``I = αF + (1-α)B`` solved in least
   squares). Where ``F`` and ``B`` are about the same colour the projection is
   ill-posed, so it is pulled towards 0.5 instead of to an arbitrary end.
4. He et al.'s guided filter, with the image as guide, makes that alpha
   follow the image's edges and removes the noise of the per-pixel estimate.
5. The known regions are put back exactly and alpha is clipped to [0, 1].

Everything is torch on the input's device, batched; nothing is trained.
"""

from __future__ import annotations

import math
import numbers

import torch

from mattezoo import InputError, InvalidOptionError

from .guided_filter import box_mean, guided_filter

# |F - B|² (in RGB units of [0,1]) below which a projection is mostly guess:
# 1e-3 is a colour difference of ~0.02 per channel, about 5 grey levels.
_AMBIGUOUS_CONTRAST = 1e-3
# Accepted distance of a trimap value from 0, 0.5 or 1 (float round-off only).
_TRIMAP_TOLERANCE = 1e-3


class GuidedMatting:
    """Trimap matting by local colour projection and guided-filter refinement.

    Call it with ``image`` ``[B,3,H,W]`` (RGB float in [0,1]) and ``trimap``
    ``[B,1,H,W]`` (0 background, 0.5 unknown, 1 foreground); it returns alpha
    ``[B,1,H,W]`` float32 in [0,1] on the image's device.
    """

    def __init__(self, radius: int, eps: float, sample_radius: int):
        self.radius = _check_int("radius", radius)
        self.eps = _check_eps(eps)
        self.sample_radius = _check_int("sample_radius", sample_radius)

    def __repr__(self) -> str:
        return f"GuidedMatting(radius={self.radius}, eps={self.eps:g}, sample_radius={self.sample_radius})"

    def __call__(self, image: torch.Tensor, trimap: torch.Tensor | None = None) -> torch.Tensor:
        _check_inputs(image, trimap)
        colour = image.to(torch.float64)
        fg = trimap > 0.75
        bg = trimap < 0.25
        unknown = ~(fg | bg)
        fg_colour = local_known_mean(colour, fg, self.sample_radius, needed=unknown)
        bg_colour = local_known_mean(colour, bg, self.sample_radius, needed=unknown)
        alpha = project_on_colour_line(colour, fg_colour, bg_colour)
        alpha = impose_known(alpha, fg, bg)
        alpha = guided_filter(colour, alpha, self.radius, self.eps)
        return impose_known(alpha, fg, bg).clamp(0.0, 1.0).to(torch.float32)


def build_guided_matting(radius: int = 8, eps: float = 1e-4, sample_radius: int = 4) -> GuidedMatting:
    """Factory registered for ``guided_matting`` (``create_method`` passes the options here).

    :param radius: guided-filter window radius in pixels (>= 1). Larger radii
        smooth the matte over a wider area.
    :param eps: guided-filter regularisation (> 0). Smaller values make the
        matte follow colour edges more tightly, larger ones blur it.
    :param sample_radius: first radius (>= 1) at which known foreground and
        background colours are looked for; it doubles until some are found.
    """
    return GuidedMatting(radius=radius, eps=eps, sample_radius=sample_radius)


def local_known_mean(image: torch.Tensor, known: torch.Tensor, radius: int, needed: torch.Tensor | None = None) -> torch.Tensor:
    """Mean colour of the ``known`` pixels in the smallest window around each pixel that has one.

    Windows start at ``radius`` and double until they cover the image. A
    pixel whose image has no known pixel at all gets its own colour, so step
    3 then reads it as "unlike the other layer": with no known foreground,
    everything unlike the local background becomes foreground (and vice
    versa), and what looks like it stays undecided at 0.5.

    :param image: ``[B,C,H,W]``; :param known: ``[B,1,H,W]`` bool.
    :param needed: ``[B,1,H,W]`` bool, the pixels whose estimate is used
        (default all); the search stops once they all have one, so a band of
        unknown pixels does not pay for windows as wide as the image.
    :return: ``[B,C,H,W]`` float64.
    """
    weight = known.to(torch.float64)
    colour = image.to(torch.float64)
    # One box pass gives both the weighted colour sums and the weights.
    stacked = torch.cat([colour * weight, weight], dim=1)
    estimate = colour
    found = torch.zeros_like(known)
    settled = torch.zeros_like(known) if needed is None else ~needed
    largest = max(image.shape[-2:])
    while True:
        # Sums of 0/1 weights are exact in float64, so "> 0" means "has a known pixel".
        means = box_mean(stacked, radius)
        share = means[:, -1:]
        take = (share > 0) & ~found
        estimate = torch.where(take, means[:, :-1] / share.clamp_min(1e-300), estimate)
        found |= take
        settled |= take
        if radius >= largest or bool(settled.all()):
            return estimate
        radius = min(2 * radius, largest)


def project_on_colour_line(image: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """Least-squares alpha of ``image = α·fg + (1-α)·bg``, pulled to 0.5 where ``fg ≈ bg``.

    ``α = (⟨I-B, F-B⟩ + c/2) / (|F-B|² + c)`` with ``c`` the contrast below
    which the projection is ambiguous; it is the plain projection wherever the
    two colours differ clearly. Returns ``[B,1,H,W]`` in [0,1].
    """
    line = fg - bg
    numerator = ((image - bg) * line).sum(dim=1, keepdim=True) + 0.5 * _AMBIGUOUS_CONTRAST
    denominator = (line * line).sum(dim=1, keepdim=True) + _AMBIGUOUS_CONTRAST
    return (numerator / denominator).clamp(0.0, 1.0)


def impose_known(alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    one, zero = alpha.new_ones(()), alpha.new_zeros(())
    return torch.where(fg, one, torch.where(bg, zero, alpha))


def _check_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidOptionError(f"guided_matting: {name} must be an integer >= 1 (pixels), got {value!r}")
    return int(value)


def _check_eps(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise InvalidOptionError(f"guided_matting: eps must be a finite number > 0 (e.g. 1e-4 to 1e-1), got {value!r}")
    return float(value)


def _check_inputs(image, trimap) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"guided_matting: image must be a [B,3,H,W] tensor, got {got}")
    if not image.is_floating_point():
        raise InputError(f"guided_matting: image must be float RGB in [0,1], got dtype {image.dtype}; divide uint8 images by 255")
    if trimap is None:
        raise InputError("guided_matting is a classical method and needs a trimap (0 background, 0.5 unknown, 1 foreground)")
    if not isinstance(trimap, torch.Tensor) or trimap.ndim != 4 or trimap.shape[1] != 1 or trimap.shape[0] != image.shape[0] or trimap.shape[-2:] != image.shape[-2:]:
        got = tuple(trimap.shape) if isinstance(trimap, torch.Tensor) else type(trimap).__name__
        raise InputError(f"guided_matting: trimap must be a [B,1,H,W] tensor matching the image {tuple(image.shape)}, got {got}")
    if trimap.device != image.device:
        raise InputError(f"guided_matting: image is on {image.device} but trimap is on {trimap.device}; put both on one device")
    if image.numel() == 0:
        raise InputError(f"guided_matting: image is empty: shape {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("guided_matting: image contains NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"guided_matting: image must lie in [0,1], got values in [{low:.4g}, {high:.4g}]")
    values = trimap.to(torch.float32)
    valid = (values - 0.0).abs() <= _TRIMAP_TOLERANCE
    valid |= (values - 0.5).abs() <= _TRIMAP_TOLERANCE
    valid |= (values - 1.0).abs() <= _TRIMAP_TOLERANCE
    if not bool(valid.all()):
        odd = torch.unique(values[~valid])[:6].tolist()
        raise InputError(
            f"guided_matting: trimap values must be 0 (background), 0.5 (unknown) or 1 (foreground); "
            f"found {int((~valid).sum())} other value(s), e.g. {', '.join(f'{v:.4g}' for v in odd)}"
        )
