"""audit(): dlib's descriptor says the blurred face is another person; leaks are counted."""

from __future__ import annotations

import numpy as np
import pytest
import face_photos as scenes
from face_photos import needs_dlib

from mattezoo.errors import InputError
from mattezoo.privacy import SAME_PERSON_DISTANCE, anonymize, audit

pytestmark = needs_dlib

CASES = [("dlib68", "original"), ("dlib68", "half_size"), ("dlib68", "two_people"), ("haar", "original"), ("haar", "rotated_15"), ("haar", "mirrored")]


@pytest.mark.parametrize("backend, name", CASES)
def test_every_blurred_face_is_another_person(backend, name):
    image, centres = scenes.variants()[name]
    result = anonymize(image, detector=backend)
    report = audit(image, result.image, result.mask, faces=result.faces)
    assert len(report.faces) == len(centres)
    for face in report.faces:
        assert face.descriptor_distance > SAME_PERSON_DISTANCE, face
        assert face.changed_outside_mask == 0 and face.changed_in_transition == 0
    assert report.changed_outside_mask == 0 and report.passed


def test_audit_with_transition_area_and_own_detection():
    image, trimap = scenes.astronaut(), scenes.hair_trimap()
    result = anonymize(image, trimap=trimap)
    report = audit(image, result.image, result.mask, trimap=trimap)  # faces found by the audit itself
    assert len(report.faces) == 1 and report.passed
    assert report.changed_in_transition == 0


def test_untouched_face_is_the_same_person_and_still_detected():
    image = scenes.astronaut()
    report = audit(image, image.copy(), np.zeros(image.shape[:2], np.uint8))
    (face,) = report.faces
    assert face.descriptor_distance < 1e-6 and not face.anonymized and face.still_detected
    assert not report.passed


def test_weak_blur_fails_the_audit():
    image = scenes.astronaut()
    result = anonymize(image, strength=0.02)
    report = audit(image, result.image, result.mask, faces=result.faces)
    assert report.faces[0].descriptor_distance < SAME_PERSON_DISTANCE and not report.passed


def test_leaks_outside_the_mask_and_in_the_transition_are_counted():
    image, trimap = scenes.astronaut(), scenes.hair_trimap()
    result = anonymize(image, trimap=trimap)
    tampered = result.image.copy()
    tampered[5, 5] ^= 1  # far from the face, outside the mask
    ys, xs = np.nonzero(trimap == 128)
    tampered[ys[:7], xs[:7], 0] ^= 4  # seven transition pixels
    report = audit(image, tampered, result.mask, faces=result.faces, trimap=trimap)
    outside = np.any(tampered != image, axis=2) & (result.mask == 0)
    assert report.changed_outside_mask == int(outside.sum()) == 8
    assert report.changed_in_transition == 7
    assert not report.passed
    assert report.to_dict()["changed_outside_mask"] == 8


def test_audit_input_errors():
    image = scenes.astronaut()
    with pytest.raises(InputError, match="must match"):
        audit(image, image[:256], np.zeros((512, 512), np.uint8))
    with pytest.raises(InputError, match="must match"):
        audit(image, image, np.zeros((10, 10), np.uint8))
