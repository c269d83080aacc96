"""P3M face obfuscation (section 3.2): landmarks, face mask, minus transition area, Gaussian blur.

The guarantee callers rely on: a pixel is changed only if it is inside the
final face mask, and the final mask never contains a transition-area pixel.
The last step enforces it for every code path with
``out = where(mask, blended, original)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidOptionError
from ..images import check_image
from .blur import DEFAULT_STRENGTH, gaussian_blur, sigma_for_face
from .landmarks import DetectOptions, Face, Rejected, detect_faces, faces_from_landmarks, faces_from_mask, resolve_backend
from .mask import face_region, feather_weights, load_face_mask, transition_area

DEFAULT_FEATHER = 0.08  # feather width as a fraction of the face width
DEFAULT_BROW_RAISE = 0.5  # see mask.py: lifts the brow line onto the forehead


@dataclass(frozen=True, eq=False)
class AnonymizeResult:
    """What :func:`anonymize` returns.

    ``image``: the obfuscated H×W×3 uint8 image (a copy; the input is never modified).
    ``mask``: H×W uint8, 255 inside the final face mask, 0 elsewhere (P3M-10k ``facemask`` format).
    ``weights``: H×W float32 blend weights in [0, 1], nonzero only inside ``mask``.
    ``faces``: the faces blurred; ``rejected``: candidates not taken as faces, with reasons.
    ``sigmas``: the blur sigma used for each face, in pixels.
    ``no_face``: True when nothing was found: the image comes back unchanged, flagged for review.
    """

    image: np.ndarray
    mask: np.ndarray
    weights: np.ndarray
    faces: tuple[Face, ...]
    rejected: tuple[Rejected, ...]
    sigmas: tuple[float, ...]
    backend: str

    @property
    def no_face(self) -> bool:
        return not self.faces

    def to_dict(self) -> dict:
        """A JSON-ready summary (no pixel arrays)."""
        return {
            "backend": self.backend,
            "no_face": self.no_face,
            "faces": [dict(f.to_dict(), sigma=round(s, 2)) for f, s in zip(self.faces, self.sigmas)],
            "rejected": [r.to_dict() for r in self.rejected],
            "mask_pixels": int(np.count_nonzero(self.mask)),
        }


def _positive(name: str, value, upper: float | None = None) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = f"[0, {upper}]" if upper is not None else ">= 0"
        raise InvalidOptionError(f"{name} must be a finite number in {bound}, got {value!r}")
    return value


def anonymize(
    image,
    alpha=None,
    trimap=None,
    *,
    detector: str = "auto",
    landmarks=None,
    face_mask=None,
    strength: float = DEFAULT_STRENGTH,
    feather: float = DEFAULT_FEATHER,
    brow_raise: float = DEFAULT_BROW_RAISE,
    options: DetectOptions | None = None,
) -> AnonymizeResult:
    """Blur every face in ``image`` inside a landmark mask, keeping the transition area intact.

    Parameters
    ----------
    image : H×W×3 uint8 RGB array or path.
    alpha : optional H×W matte (float in [0, 1], uint8, or path); pixels with 0 < alpha < 1 are kept.
    trimap : optional H×W uint8 trimap (or path); pixels equal to 128 are kept.
    detector : ``"auto"`` (dlib68 if installed, else haar), ``"dlib68"``, ``"haar"`` or ``"given"``.
    landmarks : with ``detector="given"``: a 68×2 (x, y) array or a list of them, one per face.
    face_mask : with ``detector="given"``: an H×W mask or P3M-10k facemask PNG (nonzero = face).
    strength : blur sigma as a fraction of the face width (default 0.2).
    feather : width of the soft mask edge as a fraction of the face width (default 0.08).
    brow_raise : how far the brow line is lifted onto the forehead, in eye distances (default 0.5).
    options : :class:`DetectOptions` for the detector backends.
    """
    image = check_image(image)
    shape = image.shape[:2]
    strength = _positive("strength", strength, 10.0)
    feather = _positive("feather", feather, 1.0)
    brow_raise = _positive("brow_raise", brow_raise, 3.0)
    keep = transition_area(shape, alpha=alpha, trimap=trimap)

    given_mask = None
    if landmarks is not None or face_mask is not None:
        if detector not in ("auto", "given"):
            raise InvalidOptionError(f"landmarks= and face_mask= are used with detector='given' (or 'auto'), not {detector!r}")
        backend = "given"
    else:
        backend = resolve_backend(detector)
    if backend == "given":
        if (landmarks is None) == (face_mask is None):
            raise InvalidOptionError("detector='given' needs exactly one of landmarks= (68×2 arrays) or face_mask= (H×W mask)")
        if landmarks is not None:
            faces, rejected = faces_from_landmarks(landmarks, shape), []
        else:
            given_mask = load_face_mask(face_mask, shape)
            faces, rejected = faces_from_mask(given_mask), []
    else:
        faces, rejected = detect_faces(image, backend, options)

    out = image.astype(np.float32)
    union = np.zeros(shape, dtype=bool)
    total_weight = np.zeros(shape, dtype=np.float32)
    sigmas = []
    for face in faces:
        region = face_region(face, shape, brow_raise, given_mask) & ~keep
        sigma = sigma_for_face(face.size, strength)
        sigmas.append(sigma)
        if not region.any():
            continue
        weights = feather_weights(region, feather * face.size)
        # Blur only a window around the face: 3 sigma of context is all the kernel sees.
        ys, xs = np.nonzero(region)
        pad = int(math.ceil(3 * sigma))
        y0, y1 = max(0, ys.min() - pad), min(shape[0], ys.max() + 1 + pad)
        x0, x1 = max(0, xs.min() - pad), min(shape[1], xs.max() + 1 + pad)
        window = (slice(y0, y1), slice(x0, x1))
        blurred = gaussian_blur(out[window], sigma)
        w = weights[window][..., None]
        out[window] = out[window] * (1.0 - w) + blurred * w
        union |= region
        total_weight = np.maximum(total_weight, weights)

    blended = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    result = np.where(union[..., None], blended, image)
    return AnonymizeResult(
        image=result,
        mask=union.astype(np.uint8) * 255,
        weights=total_weight,
        faces=tuple(faces),
        rejected=tuple(rejected),
        sigmas=tuple(sigmas),
        backend=backend,
    )
