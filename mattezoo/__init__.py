"""mattezoo: a plugin-based zoo of image-matting methods.

Public API::

    mattezoo.list_methods(pattern=None, family=None) -> list[str]
    mattezoo.get_method(name) -> MethodSpec
    mattezoo.create_method(name, **options) -> matting object
    mattezoo.predict(method, image, trimap=None) -> H×W float32 alpha
    mattezoo.predict_trimap(method, image) -> H×W uint8 trimap (methods that make one)

Plugins implement the hooks in :mod:`mattezoo.hookspecs` with
:data:`mattezoo.hookimpl` and register :class:`MethodSpec` objects.
"""

from .errors import (
    CheckpointError,
    DuplicateMethodError,
    InputError,
    InvalidOptionError,
    MattezooError,
    UnknownMethodError,
)
from .factory import create_method
from .hookspecs import hookimpl
from .inference import predict, predict_trimap, run_method
from .registry import get_method, list_methods
from .spec import FAMILIES, PROTOCOLS, MethodSpec, PaperResult, WeightsCfg

__version__ = "0.1.0"

__all__ = [
    "FAMILIES",
    "PROTOCOLS",
    "CheckpointError",
    "DuplicateMethodError",
    "InputError",
    "InvalidOptionError",
    "MattezooError",
    "MethodSpec",
    "PaperResult",
    "UnknownMethodError",
    "WeightsCfg",
    "create_method",
    "get_method",
    "hookimpl",
    "list_methods",
    "predict",
    "predict_trimap",
    "run_method",
]
