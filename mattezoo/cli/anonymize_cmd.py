"""``mattezoo anonymize IN OUT``: P3M face obfuscation of one image or a folder, with an optional audit.

Outputs are always PNG: a lossy format would change pixels outside the face
mask, which the method promises to keep bit-identical. Inputs are never
overwritten, and a file that cannot be read or processed is recorded in the
report and skipped, so one bad file does not stop a batch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import InputError, MattezooError
from ..images import IMAGE_SUFFIXES, read_image, write_png


def add_parser(sub):
    p = sub.add_parser("anonymize", help="blur faces as in P3M (landmark mask minus transition area), optionally audit the result")
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("output", help="output PNG file (for a file input) or folder (for a folder input)")
    p.add_argument("--alpha-dir", help="folder of alpha mattes named like the images; 0<alpha<1 pixels are kept")
    p.add_argument("--trimap-dir", help="folder of trimaps named like the images; pixels of value 128 are kept")
    p.add_argument("--masks-out", help="write each final face mask here as <name>.png (0/255, P3M-10k facemask format)")
    p.add_argument("--audit", metavar="REPORT.json", help="audit every result (needs dlib) and write a JSON report")
    p.add_argument("--detector", default="auto", choices=("auto", "dlib68", "haar"), help="face backend (default: dlib68 if installed, else haar)")
    p.add_argument("--strength", type=float, default=None, help="blur sigma as a fraction of the face width (default 0.2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _companion(folder: Path | None, stem: str, what: str) -> Path | None:
    """The file in ``folder`` with the image's stem (alpha or trimap), or an error naming what is missing."""
    if folder is None:
        return None
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    raise InputError(f"no {what} for {stem!r} in {str(folder)!r} (looked for {stem}.png, .jpg, ...)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _plan(args) -> list[tuple[Path, Path]]:
    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise InputError(f"{str(src)!r}: no such file or folder")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise InputError(f"the input is a folder, so the output {str(dst)!r} must be a folder too")
        if dst.exists() and _same_file(src, dst):
            raise InputError(f"the output folder {str(dst)!r} is the input folder; choose another so inputs are never overwritten")
        files = sorted(p for p in src.iterdir() if p.is_file())
        if not files:
            raise InputError(f"{str(src)!r} contains no files")
        return [(f, dst / f"{f.stem}.png") for f in files]
    target = dst / f"{src.stem}.png" if dst.is_dir() else dst
    if target.resolve() == src.resolve():
        raise InputError(f"output {str(target)!r} would overwrite the input; choose another path")
    if target.suffix.lower() != ".png":
        raise InputError(f"output {str(target)!r} must be a .png file: a lossy format would alter pixels outside the face mask")
    return [(src, target)]


def _process(args, src: Path, dst: Path, masks_out: Path | None, options) -> dict:
    from ..privacy import anonymize, audit

    record: dict = {"input": str(src), "output": None, "mask": None, "error": None}
    if src.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{str(src)!r} does not have an image suffix ({', '.join(IMAGE_SUFFIXES)})")
    if _same_file(src, dst) or src.resolve() == dst.resolve():
        raise InputError(f"output {str(dst)!r} would overwrite the input; refusing")
    image = read_image(src)
    alpha = _companion(Path(args.alpha_dir) if args.alpha_dir else None, src.stem, "alpha matte")
    trimap = _companion(Path(args.trimap_dir) if args.trimap_dir else None, src.stem, "trimap")
    result = anonymize(image, alpha=alpha, trimap=trimap, detector=args.detector, **options)
    record.update(result.to_dict())
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_png(dst, result.image)
    record["output"] = str(dst)
    if masks_out is not None:
        mask_path = masks_out / f"{src.stem}.png"
        write_png(mask_path, result.mask)
        record["mask"] = str(mask_path)
    if args.audit:
        record["audit"] = audit(image, result.image, result.mask, faces=result.faces, alpha=alpha, trimap=trimap).to_dict()
    return record


def run(args) -> int:
    from tqdm import tqdm

    jobs = _plan(args)
    inputs = {src.resolve() for src, _ in jobs}
    masks_out = Path(args.masks_out) if args.masks_out else None
    if masks_out is not None:
        masks_out.mkdir(parents=True, exist_ok=True)
    options = {} if args.strength is None else {"strength": args.strength}
    records = []
    for src, dst in tqdm(jobs, desc="anonymize", unit="img", disable=args.quiet or len(jobs) < 2, file=sys.stderr):
        try:
            if dst.resolve() in inputs:
                raise InputError(f"output {str(dst)!r} is one of the inputs; refusing to overwrite it")
            records.append(_process(args, src, dst, masks_out, options))
        except MattezooError as exc:
            records.append({"input": str(src), "output": None, "mask": None, "error": str(exc)})
    failed = [r for r in records if r["error"]]
    no_face = [r for r in records if not r["error"] and r.get("no_face")]
    audit_failed = [r for r in records if "audit" in r and not r["audit"]["passed"]]
    summary = {
        "images": len(records),
        "faces": sum(len(r.get("faces", [])) for r in records),
        "no_face": len(no_face),
        "errors": len(failed),
        "audit_failed": len(audit_failed) if args.audit else None,
    }
    if args.audit:
        Path(args.audit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.audit).write_text(json.dumps({"summary": summary, "images": records}, indent=2))
    for r in failed:
        print(f"mattezoo anonymize: skipped {r['input']}: {r['error']}", file=sys.stderr)
    for r in audit_failed:
        leaks = [f"face at {f['box']}: descriptor distance {f['descriptor_distance']}" for f in r["audit"]["faces"] if not f["anonymized"]]
        pixels = f"{r['audit']['changed_outside_mask']} px changed outside the mask, {r['audit']['changed_in_transition']} in the transition area"
        print(f"mattezoo anonymize: audit failed for {r['input']}: {'; '.join(leaks + [pixels])}", file=sys.stderr)
    for r in no_face:
        print(f"mattezoo anonymize: no face found in {r['input']} (copied unchanged; check it by eye)", file=sys.stderr)
    print(f"{summary['images']} image(s), {summary['faces']} face(s) blurred, {summary['no_face']} without a face, {summary['errors']} error(s)" + (f", {summary['audit_failed']} failed the audit" if args.audit else ""))
    return 1 if failed or audit_failed else 0
