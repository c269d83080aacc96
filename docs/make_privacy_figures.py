"""Make the pictures and the audit table of docs/privacy.md from the code itself.

    python docs/make_privacy_figures.py      # writes docs/img/privacy/*.jpg, prints the audit table

Every figure is produced by mattezoo.privacy on photographs shipped with
scikit-image; nothing is drawn by hand except the labels and outlines.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "privacy"))
import face_photos as scenes  # noqa: E402  (the test photographs and the hand-drawn hair trimap)

from mattezoo.privacy import anonymize, audit  # noqa: E402
from mattezoo.privacy.landmarks import dlib_boxes  # noqa: E402
from mattezoo.privacy.mask import landmark_polygon  # noqa: E402

OUT = ROOT / "docs" / "img" / "privacy"


def save(name: str, rgb: np.ndarray, width: int = 640) -> None:
    scale = width / rgb.shape[1]
    small = cv2.resize(rgb, (width, round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(OUT / name), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.rectangle(img, (0, 0), (img.shape[1], 26), (0, 0, 0), -1)
    cv2.putText(img, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def side_by_side(*panels: np.ndarray) -> np.ndarray:
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    out = [panels[0]]
    for p in panels[1:]:
        out += [gap, p]
    return np.concatenate(out, axis=1)


def steps_figure() -> None:
    """The four steps of P3M section 3.2 on the astronaut (crop around the head)."""
    image, trimap = scenes.astronaut(), scenes.hair_trimap()
    result = anonymize(image, trimap=trimap, detector="dlib68")
    face = result.faces[0]
    crop = (slice(20, 230), slice(120, 330))
    s1 = image.copy()
    for x, y in face.landmarks:
        cv2.circle(s1, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1)
    s2 = image.copy()
    poly = np.round(landmark_polygon(face.landmarks)).astype(np.int32)
    cv2.polylines(s2, [poly], True, (255, 0, 0), 2)
    s3 = image.copy()
    s3[trimap == 128] = (0, 255, 0)
    s3[result.mask > 0] = (0.5 * s3[result.mask > 0] + (127, 0, 0)).astype(np.uint8)
    panels = [label(p[crop], t) for p, t in ((s1, "1 landmarks"), (s2, "2 jaw + raised brows"), (s3, "3 minus transition"), (result.image, "4 blurred"))]
    save("steps.jpg", side_by_side(*panels), width=880)


def before_after() -> None:
    image, trimap = scenes.astronaut(), scenes.hair_trimap()
    dl = anonymize(image, trimap=trimap, detector="dlib68")
    hr = anonymize(image, trimap=trimap, detector="haar")
    crop = (slice(0, 300), slice(90, 360))
    save("before_after.jpg", side_by_side(label(image[crop], "original"), label(dl.image[crop], "dlib68"), label(hr.image[crop], "haar")), width=820)
    pair, _ = scenes.variants()["two_people"]
    save("two_people.jpg", side_by_side(label(pair[:300], "original"), label(anonymize(pair).image[:300], "anonymized")), width=880)


def rejection_figure() -> None:
    image = scenes.astronaut()
    result = anonymize(image, detector="dlib68")
    vis = result.image.copy()
    for box, score, _kind in dlib_boxes(image):
        rejected = any(r.face.box[:2] == box[:2] for r in result.rejected)
        colour = (255, 40, 40) if rejected else (40, 220, 40)
        cv2.rectangle(vis, box[:2], (box[2] - 1, box[3] - 1), colour, 2)
        text = f"{'rejected' if rejected else 'face'} {score:+.2f}"
        cv2.putText(vis, text, (box[0], max(16, box[1] - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
    save("badge_rejected.jpg", vis, width=512)


def audit_table() -> str:
    rows = ["| image | backend | faces | descriptor distance | still detected | changed outside mask | changed in transition |", "|---|---|---|---|---|---|---|"]
    trimap = scenes.hair_trimap()
    cases = [(n, img, None) for n, (img, _) in scenes.variants().items()] + [("original + hair trimap", scenes.astronaut(), trimap)]
    for backend in ("dlib68", "haar"):
        for name, image, tri in cases:
            result = anonymize(image, trimap=tri, detector=backend)
            report = audit(image, result.image, result.mask, faces=result.faces, trimap=tri)
            dist = ", ".join(f"{f.descriptor_distance:.3f}" for f in report.faces)
            seen = ", ".join("yes" if f.still_detected else "no" for f in report.faces)
            rows.append(f"| {name} | {backend} | {len(report.faces)} | {dist} | {seen} | {report.changed_outside_mask} | {report.changed_in_transition} |")
    for name, image in scenes.faceless().items():
        result = anonymize(image)
        rows.append(f"| {name} (no face) | {result.backend} | 0 | - | - | {int(np.any(result.image != image, axis=2).sum())} | - |")
    return "\n".join(rows)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    steps_figure()
    before_after()
    rejection_figure()
    print(audit_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
