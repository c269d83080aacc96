"""Face finders: dlib's 68-point landmarks, OpenCV Haar cascades, or faces the caller gives.

Every backend returns the same :class:`Face` records plus the candidates it
threw away (:class:`Rejected`, with the reason), so callers and tests can see
*why* something that looked like a face was not blurred.

False detections are the real problem in portraits: dlib's HOG detector, run
with one upsampling step, scores the mission patch on the astronaut's suit
(``skimage.data.astronaut()``) at about +0.12, above its own default threshold
of 0. The 68-point predictor then fits a plausible face shape to it, because
the predictor is a regression from a mean face and always returns one. What
gives a non-face away is that its landmarks follow the box: move the box by
15% and the fitted points move with it, while on a real face they stay on the
eyes and mouth. :func:`landmark_drift` measures that; the score threshold and
:func:`geometry_problem` catch the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError, InvalidOptionError, choices_hint
from . import models

BACKENDS = ("auto", "dlib68", "haar", "given")

# dlib's HOG detector has five sub-detectors; its `run` reports which one fired.
_DLIB_VIEWS = {0: "frontal", 1: "profile", 2: "profile", 3: "frontal", 4: "frontal"}

# Landmark index ranges of the iBUG 68-point layout.
JAW = slice(0, 17)
BROWS = slice(17, 27)
LEFT_EYE = slice(36, 42)  # the subject's right eye, on the image's left
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT, MOUTH_RIGHT = 48, 54
CHIN = 8


@dataclass(frozen=True, eq=False)
class Face:
    """One face: box ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive) of the full image.

    ``landmarks`` is a read-only 68×2 float32 array of (x, y) for dlib68 and
    given landmarks, ``None`` for haar and given masks. ``score`` is the
    detector's own confidence (dlib SVM margin, Haar stage sum; 1.0 for given).
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray | None
    backend: str
    score: float
    view: str = "frontal"

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def size(self) -> float:
        """Face width in pixels: jaw-to-jaw for landmarks, box width otherwise; sets blur strength."""
        if self.landmarks is not None:
            return float(max(np.linalg.norm(self.landmarks[16] - self.landmarks[0]), 1.0))
        return float(max(self.width, 1))

    def to_dict(self) -> dict:
        return {
            "box": list(self.box),
            "backend": self.backend,
            "score": round(float(self.score), 4),
            "view": self.view,
            "landmarks": None if self.landmarks is None else np.round(self.landmarks, 1).tolist(),
        }


@dataclass(frozen=True, eq=False)
class Rejected:
    """A detector candidate that was not taken as a face, and why."""

    face: Face
    reason: str

    def to_dict(self) -> dict:
        return {"box": list(self.face.box), "backend": self.face.backend, "score": round(float(self.face.score), 4), "reason": self.reason}


@dataclass(frozen=True)
class DetectOptions:
    """Knobs shared by the detector backends (defaults suit portraits up to 4K)."""

    upsample: int = 1  # dlib pyramid upsampling steps: 1 finds faces down to ~40 px at detection scale
    min_score: float = 0.0  # dlib SVM margin; 0 is dlib's own default threshold
    max_drift: float = 0.045  # landmark drift under box jitter, in box widths (faces < 0.01, patches > 0.05)
    detect_max_side: int = 800  # detection runs on a copy scaled down to this long side
    haar_min_neighbors: int = 4
    haar_profile_min_score: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.upsample, int) and 0 <= self.upsample <= 3):
            raise InvalidOptionError(f"upsample must be an integer 0..3, got {self.upsample!r}")
        if not np.isfinite(self.min_score):
            raise InvalidOptionError(f"min_score must be finite, got {self.min_score!r}")
        if not (isinstance(self.detect_max_side, int) and self.detect_max_side >= 64):
            raise InvalidOptionError(f"detect_max_side must be an integer >= 64, got {self.detect_max_side!r}")
        if not (0 < self.max_drift < 1):
            raise InvalidOptionError(f"max_drift must lie in (0, 1), got {self.max_drift!r}")


def resolve_backend(detector: str) -> str:
    """``auto`` becomes ``dlib68`` when dlib and its models are installed, else ``haar``."""
    if detector not in BACKENDS:
        raise InvalidOptionError(f"unknown face detector {detector!r}. {choices_hint(str(detector), list(BACKENDS), 'detectors')}")
    if detector == "auto":
        return "dlib68" if models.has_dlib() else "haar"
    return detector


def detect_faces(image: np.ndarray, detector: str = "auto", options: DetectOptions | None = None) -> tuple[list[Face], list[Rejected]]:
    """Faces in an RGB uint8 image with ``dlib68``, ``haar`` or ``auto``; also returns rejected candidates."""
    options = options or DetectOptions()
    backend = resolve_backend(detector)
    if backend == "dlib68":
        return detect_dlib68(image, options)
    if backend == "haar":
        return detect_haar(image, options)
    raise InvalidOptionError("detector 'given' has nothing to detect: pass landmarks= or face_mask=")


# ----------------------------------------------------------------------------- dlib


def _downscaled(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale == 1.0:
        return np.ascontiguousarray(image), 1.0
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def predict_landmarks(image: np.ndarray, box) -> np.ndarray:
    """dlib's 68 landmarks of the face in ``box`` (x0, y0, x1, y1) as a 68×2 float32 array."""
    dlib = models.dlib()
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = models.shape_predictor_68()(np.ascontiguousarray(image), dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def landmark_drift(image: np.ndarray, box, landmarks: np.ndarray) -> float:
    """How far the landmarks follow the box when it is moved, in box widths (median of six moves).

    The predictor refines a mean shape placed in the box. On a real face it
    converges to the same eyes, nose and mouth wherever the box starts; on a
    badge or a pattern there is nothing to converge to, so the points move
    with the box. Moves: ±15% sideways and up/down, and a 25% zoom in and out.
    """
    x0, y0, x1, y1 = box
    w = x1 - x0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    moves = []
    for dx, dy, zoom in ((0.15, 0, 1), (-0.15, 0, 1), (0, 0.15, 1), (0, -0.15, 1), (0, 0, 1.25), (0, 0, 0.8)):
        half = w * zoom / 2
        mx, my = cx + dx * w, cy + dy * w
        moved = predict_landmarks(image, (mx - half, my - half, mx + half, my + half))
        moves.append(np.median(np.linalg.norm(moved - landmarks, axis=1)) / w)
    return float(np.median(moves))


def _angle_between(u: np.ndarray, v: np.ndarray) -> float:
    a = np.degrees(np.arctan2(u[1], u[0]) - np.arctan2(v[1], v[0]))
    return float(abs((a + 180.0) % 360.0 - 180.0))


def geometry_problem(landmarks: np.ndarray) -> str | None:
    """A reason why 68 points cannot be a face, or None when they can.

    Checks, in a frame aligned with the eye line: brows above the eyes, nose
    tip below them, mouth below the nose, chin below the mouth; mouth, brow and
    jaw lines within 20° of the eye line; the eye-to-mouth axis within 25° of
    perpendicular; eye distance 25-70% of the jaw width; a jaw that curves one
    way. Loose bounds: they catch collapsed or twisted fits, not poses.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    left, right = p[LEFT_EYE].mean(0), p[RIGHT_EYE].mean(0)
    eye_axis = right - left
    iod = float(np.linalg.norm(eye_axis))
    jaw_width = float(np.linalg.norm(p[16] - p[0]))
    if iod < 2 or jaw_width < 4:
        return f"landmarks collapsed (eye distance {iod:.1f} px, jaw width {jaw_width:.1f} px)"
    if not 0.25 <= iod / jaw_width <= 0.7:
        return f"eye distance is {iod / jaw_width:.2f} of the jaw width (faces: 0.25-0.70)"
    ex = eye_axis / iod
    ey = np.array([-ex[1], ex[0]])  # points towards the chin
    q = (p - (left + right) / 2) @ np.stack([ex, ey], axis=1)
    brow_y = q[BROWS, 1].mean()
    mouth_y = (q[MOUTH_LEFT, 1] + q[MOUTH_RIGHT, 1]) / 2
    if not (brow_y < 0 < q[NOSE_TIP, 1] < mouth_y < q[CHIN, 1]):
        return "landmarks out of order (brows, eyes, nose, mouth, chin are not top to bottom)"
    for name, (a, b) in {"mouth": (MOUTH_LEFT, MOUTH_RIGHT), "brow": (17, 26), "jaw": (0, 16)}.items():
        tilt = _angle_between(p[b] - p[a], eye_axis)
        if tilt > 20:
            return f"{name} line is tilted {tilt:.0f}° from the eye line (at most 20°)"
    mouth_mid = (p[MOUTH_LEFT] + p[MOUTH_RIGHT]) / 2
    skew = abs(90.0 - _angle_between(mouth_mid - (left + right) / 2, eye_axis))
    if skew > 25:
        return f"eye-to-mouth axis is {skew:.0f}° off perpendicular to the eyes (at most 25°)"
    jaw = q[JAW]
    steps = np.diff(jaw, axis=0)
    turns = steps[:-1, 0] * steps[1:, 1] - steps[:-1, 1] * steps[1:, 0]
    if turns.size and np.mean(np.sign(turns) == np.sign(turns.sum())) < 0.7:
        return "jaw line zigzags instead of curving one way"
    return None


def dlib_boxes(image: np.ndarray, options: DetectOptions | None = None) -> list[tuple[tuple[int, int, int, int], float, int]]:
    """Raw dlib HOG hits ``(box, score, sub-detector)`` in full-image pixels, before any rejection."""
    options = options or DetectOptions()
    models.require_dlib()
    small, scale = _downscaled(image, options.detect_max_side)
    rects, scores, kinds = models.frontal_face_detector().run(small, options.upsample, options.min_score)
    hits = []
    for rect, score, kind in zip(rects, scores, kinds):
        box = (
            int(round(rect.left() / scale)),
            int(round(rect.top() / scale)),
            int(round((rect.right() + 1) / scale)),
            int(round((rect.bottom() + 1) / scale)),
        )
        hits.append((box, float(score), int(kind)))
    return hits


def detect_dlib68(image: np.ndarray, options: DetectOptions | None = None) -> tuple[list[Face], list[Rejected]]:
    """dlib HOG detection on a downscaled copy, 68 landmarks at full resolution, then rejection."""
    options = options or DetectOptions()
    models.require_dlib()
    faces, rejected = [], []
    h, w = image.shape[:2]
    for box, score, kind in dlib_boxes(image, options):
        pts = predict_landmarks(image, box)
        pts.setflags(write=False)
        face = Face(box=_clip_box(box, w, h), landmarks=pts, backend="dlib68", score=float(score), view=_DLIB_VIEWS.get(int(kind), "unknown"))
        reason = geometry_problem(pts)
        if reason is None:
            drift = landmark_drift(image, box, pts)
            if drift > options.max_drift:
                reason = f"landmarks follow the box when it moves (drift {drift:.3f} box widths > {options.max_drift}): not a face"
        (rejected.append(Rejected(face, reason)) if reason else faces.append(face))
    return faces, rejected


def _clip_box(box, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (max(0, x0), max(0, y0), min(w, x1), min(h, y1))


# ----------------------------------------------------------------------------- Haar


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def boxes_overlap(a, b) -> bool:
    """Same face: IoU over 0.3, or one box's centre inside the other."""
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    inside = b[0] <= ca[0] <= b[2] and b[1] <= ca[1] <= b[3] or a[0] <= cb[0] <= a[2] and a[1] <= cb[1] <= a[3]
    return _iou(a, b) > 0.3 or inside


def _cascade_hits(cascade, gray: np.ndarray, min_neighbors: int, min_size: int, scale_factor: float = 1.1):
    boxes, _levels, weights = cascade.detectMultiScale3(
        gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size), outputRejectLevels=True
    )
    return [(tuple(int(v) for v in b), float(s)) for b, s in zip(boxes, np.ravel(weights))]


def _has_eye(gray: np.ndarray, x: int, y: int, w: int, h: int) -> bool:
    """An eye in the upper 60% of a box: the check that keeps profile hits on faces."""
    roi = gray[y : y + int(h * 0.6), x : x + w]
    if roi.size == 0:
        return False
    eyes = models.haar_cascade(models.HAAR_EYE).detectMultiScale(roi, 1.1, 3, minSize=(max(6, w // 10),) * 2)
    return len(eyes) > 0


def detect_haar(image: np.ndarray, options: DetectOptions | None = None) -> tuple[list[Face], list[Rejected]]:
    """OpenCV frontal (alt2) and profile (both directions) cascades; boxes only, no landmarks.

    The frontal alt2 cascade is strict already, so its hits are kept. The
    profile cascade also fires on cats and folds of cloth, so a profile hit
    must reach ``haar_profile_min_score`` and contain an eye. Overlapping hits
    are merged, frontal first.
    """
    options = options or DetectOptions()
    small, scale = _downscaled(image, options.detect_max_side)
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    sw = gray.shape[1]
    # Haar is the slow backend (about 0.15 s per cascade pass on 512² here), so it skips faces
    # under 6% of the short side and steps the profile cascade, run twice, in coarser 20% scales.
    min_size = max(24, int(0.06 * min(gray.shape)))
    candidates = []  # (box in small coords, score, view)
    for box, score in _cascade_hits(models.haar_cascade(models.HAAR_FRONTAL), gray, options.haar_min_neighbors, min_size):
        candidates.append((box, score, "frontal"))
    profile = models.haar_cascade(models.HAAR_PROFILE)
    flipped = np.ascontiguousarray(gray[:, ::-1])
    for source, mirrored in ((gray, False), (flipped, True)):
        for (x, y, bw, bh), score in _cascade_hits(profile, source, options.haar_min_neighbors, min_size, 1.2):
            if mirrored:
                x = sw - x - bw
            candidates.append(((x, y, bw, bh), score, "profile"))
    faces: list[Face] = []
    rejected: list[Rejected] = []
    h, w = image.shape[:2]
    for (x, y, bw, bh), score, view in candidates:
        box = _clip_box((round(x / scale), round(y / scale), round((x + bw) / scale), round((y + bh) / scale)), w, h)
        face = Face(box=box, landmarks=None, backend="haar", score=score, view=view)
        reason = None
        if view == "profile":
            if score < options.haar_profile_min_score:
                reason = f"profile cascade score {score:.2f} < {options.haar_profile_min_score}"
            elif not _has_eye(gray, x, y, bw, bh):
                reason = "profile hit without an eye inside"
        if reason is None and any(boxes_overlap(box, f.box) for f in faces):
            continue  # the same face, already found by a stronger cascade or hit
        (rejected.append(Rejected(face, reason)) if reason else faces.append(face))
    return faces, rejected


# ----------------------------------------------------------------------------- given


def faces_from_landmarks(landmarks, shape: tuple[int, int]) -> list[Face]:
    """Faces from caller-given 68-point landmarks: one K×2 (x, y) array per face, K = 68."""
    if isinstance(landmarks, np.ndarray) and landmarks.ndim == 2:
        landmarks = [landmarks]
    try:
        items = list(landmarks)
    except TypeError:
        raise InputError(f"landmarks must be a 68×2 array or a list of them, got {type(landmarks).__name__}") from None
    h, w = shape
    faces = []
    for i, pts in enumerate(items):
        pts = np.asarray(pts, dtype=np.float32)
        if pts.shape != (68, 2):
            raise InputError(f"landmarks[{i}] has shape {pts.shape}; the 68-point iBUG layout (68×2, x then y) is expected")
        if not np.isfinite(pts).all():
            raise InputError(f"landmarks[{i}] contains NaN or infinite coordinates")
        x0, y0 = np.floor(pts.min(0)).astype(int)
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise InputError(f"landmarks[{i}] lie entirely outside the {h}×{w} image (x in [{x0}, {x1}), y in [{y0}, {y1}))")
        pts.setflags(write=False)
        faces.append(Face(box=_clip_box((int(x0), int(y0), int(x1), int(y1)), w, h), landmarks=pts, backend="given", score=1.0))
    return faces


def faces_from_mask(mask: np.ndarray) -> list[Face]:
    """One face per 8-connected region of a given face mask (nonzero = face)."""
    count, _labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    faces = []
    for i in range(1, count):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        faces.append(Face(box=(x, y, x + bw, y + bh), landmarks=None, backend="given", score=1.0, view="unknown"))
    return faces


__all__ = [
    "BACKENDS",
    "DetectOptions",
    "Face",
    "Rejected",
    "boxes_overlap",
    "detect_dlib68",
    "dlib_boxes",
    "detect_faces",
    "detect_haar",
    "faces_from_landmarks",
    "faces_from_mask",
    "geometry_problem",
    "landmark_drift",
    "predict_landmarks",
    "resolve_backend",
]
