"""P3M-10k as released, and the same layout written by ``mattezoo data synth``.

Layout (facts from JizhiziLi/P3M and ViTAE-Transformer/P3M-Net configs)::

    ROOT/train/{blurred_image, mask, fg, bg, facemask}
    ROOT/validation/P3M-500-P/{blurred_image, mask, trimap, facemask}
    ROOT/validation/P3M-500-NP/{original_image, mask, trimap}

Images are ``.jpg`` and mattes, trimaps and face masks ``.png`` in the
release; any image suffix is read, files pair by name stem. The two test
splits may also sit directly under ROOT. Only the split's own image folder,
``mask`` and (for the test splits) ``trimap`` are required; ``fg``, ``bg``,
``facemask`` and the other twin (``original_image`` in train and
P3M-500-P, ``blurred_image`` in P3M-500-NP, which the release lacks and the
synthetic set provides) are read when present, and must then be complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..images import check_trimap, list_images, read_gray, read_image, read_matte, write_png
from .sample import Sample, check_index
from .synthetic.generator import SPLITS, canonical_split

# Folder name -> Sample field.
FIELDS = {
    "blurred_image": "blurred",
    "original_image": "normal",
    "mask": "alpha",
    "trimap": "trimap",
    "fg": "fg",
    "bg": "bg",
    "facemask": "facemask",
}


@dataclass(frozen=True)
class SplitLayout:
    split: str
    folder: str
    image: str  # the split's own image folder
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def primary(self) -> str:
        return FIELDS[self.image]

    @property
    def folders(self) -> tuple[str, ...]:
        return (self.image, *self.required, *self.optional)


LAYOUTS = {
    "train": SplitLayout("train", "train", "blurred_image", ("mask",), ("original_image", "fg", "bg", "facemask")),
    "P3M-500-P": SplitLayout("P3M-500-P", "P3M-500-P", "blurred_image", ("mask", "trimap"), ("original_image", "fg", "bg", "facemask")),
    "P3M-500-NP": SplitLayout("P3M-500-NP", "P3M-500-NP", "original_image", ("mask", "trimap"), ("blurred_image", "fg", "bg", "facemask")),
}


def split_dir(root: Path, split: str, *, for_writing: bool = False) -> Path:
    """Where ``split`` lives under ``root`` (test splits: ``validation/<name>`` or ``<name>``)."""
    layout = LAYOUTS[split]
    candidates = [root / "train"] if split == "train" else [root / "validation" / layout.folder, root / layout.folder]
    if for_writing:
        return candidates[0]
    for c in candidates:
        if c.is_dir():
            return c
    shown = ", ".join(repr(str(c)) for c in candidates)
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise InputError(f"P3M-10k split {split!r} not found: looked for {shown}; {root} holds {present or 'no folders'}")


def _stems(folder: Path) -> dict[str, Path]:
    files = list_images(folder)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise InputError(f"{folder} holds two files for {f.stem!r}: {stems[f.stem].name} and {f.name}; keep one")
        stems[f.stem] = f
    return stems


def _names(names, limit: int = 5) -> str:
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, from its header when Pillow is there."""
    try:
        from PIL import Image
    except ImportError:
        img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"{str(path)!r} is not a readable image") from None
        return img.shape[:2]
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception as exc:  # Pillow raises many types for broken files
        raise InputError(f"{str(path)!r} is not a readable image ({exc})") from None
    return h, w


class P3M10k(Sequence):
    """One split of P3M-10k: ``P3M10k(root, "train" | "P3M-500-P" | "P3M-500-NP")``.

    The layout is checked when the set is made: missing folders, files without
    a partner and empty splits raise :class:`~mattezoo.errors.InputError`.
    Image sizes are compared when a sample is read, or for every file up front
    with ``check_sizes=True`` (reads only file headers).
    """

    def __init__(self, root, split: str = "train", *, check_sizes: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"P3M-10k root {str(self.root)!r} is not a folder")
        self.split = canonical_split(split)
        self.layout = LAYOUTS[self.split]
        self.dir = split_dir(self.root, self.split)
        missing = [f for f in (self.layout.image, *self.layout.required) if not (self.dir / f).is_dir()]
        if missing:
            raise InputError(
                f"P3M-10k split {self.split!r} at {self.dir} lacks the folder(s) {', '.join(missing)}; "
                f"it needs {', '.join((self.layout.image, *self.layout.required))} (optional: {', '.join(self.layout.optional)})"
            )
        self.folders = [f for f in self.layout.folders if (self.dir / f).is_dir()]
        files = {f: _stems(self.dir / f) for f in self.folders}
        names = set(files[self.layout.image])
        if not names:
            raise InputError(f"P3M-10k split {self.split!r}: {self.dir / self.layout.image} holds no images")
        problems = []
        for folder in self.folders[1:]:
            lacking, extra = names - set(files[folder]), set(files[folder]) - names
            if lacking:
                problems.append(f"{folder}/ lacks {_names(lacking)}")
            if extra:
                problems.append(f"{folder}/ has {_names(extra)} with no image in {self.layout.image}/")
        if problems:
            raise InputError(f"P3M-10k split {self.split!r} at {self.dir} has unpaired files: " + "; ".join(problems))
        self.names = sorted(names)
        self.files = files
        if check_sizes:
            self.check_sizes()

    def __repr__(self) -> str:
        return f"P3M10k({str(self.root)!r}, {self.split!r}) with {len(self)} samples and {', '.join(self.folders)}"

    def __len__(self) -> int:
        return len(self.names)

    def paths(self, index: int) -> dict[str, Path]:
        name = self.names[index]
        return {folder: self.files[folder][name] for folder in self.folders}

    def check_sizes(self) -> None:
        """Raise if any file of a sample differs in size from the sample's image."""
        bad = []
        for i in range(len(self)):
            paths = self.paths(i)
            sizes = {f: _image_size(p) for f, p in paths.items()}
            ref = sizes[self.layout.image]
            odd = [f"{f}/{paths[f].name} is {s[0]}×{s[1]}" for f, s in sizes.items() if s != ref]
            if odd:
                bad.append(f"{self.names[i]!r} ({self.layout.image} is {ref[0]}×{ref[1]}; " + ", ".join(odd) + ")")
        if bad:
            raise InputError(f"P3M-10k split {self.split!r}: size mismatch in {len(bad)} sample(s): " + "; ".join(bad[:5]))

    def __getitem__(self, index) -> Sample:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = check_index(index, len(self))
        paths = self.paths(int(index))
        fields = {}
        for folder, path in paths.items():
            field = FIELDS[folder]
            if field in ("blurred", "normal", "fg", "bg"):
                fields[field] = read_image(path)
            elif field == "alpha":
                fields[field] = read_matte(path)
            elif field == "trimap":
                fields[field] = read_gray(path)
            else:
                fields[field] = np.where(read_gray(path) > 0, 255, 0).astype(np.uint8)
        ref = fields[self.layout.primary].shape[:2]
        odd = [f"{folder}/{paths[folder].name} is {fields[FIELDS[folder]].shape[0]}×{fields[FIELDS[folder]].shape[1]}" for folder in paths if fields[FIELDS[folder]].shape[:2] != ref]
        if odd:
            raise InputError(f"P3M-10k sample {self.names[index]!r}: size mismatch: {self.layout.image}/ is {ref[0]}×{ref[1]} but " + ", ".join(odd))
        if "trimap" in fields:
            fields["trimap"] = check_trimap(fields["trimap"], ref, name=str(paths["trimap"]))
        return Sample(name=self.names[index], primary=self.layout.primary, meta={"split": self.split, "root": str(self.root)}, **fields)


def planned_paths(root, split: str, sample: Sample) -> dict[str, Path]:
    """The files :func:`write_sample` would write for ``sample`` (folder name -> path)."""
    split = canonical_split(split)
    layout = LAYOUTS[split]
    base = split_dir(Path(root), split, for_writing=True)
    out = {}
    for folder in layout.folders:
        if getattr(sample, FIELDS[folder]) is not None:
            out[folder] = base / folder / f"{sample.name}.png"
    return out


def write_sample(root, split: str, sample: Sample, *, overwrite: bool = False) -> dict[str, Path]:
    """Write one sample in the P3M-10k layout as lossless PNGs; refuses to overwrite unless asked."""
    paths = planned_paths(root, split, sample)
    if LAYOUTS[canonical_split(split)].image not in paths:
        raise InputError(f"sample {sample.name!r} has no {LAYOUTS[canonical_split(split)].primary} image, which split {split!r} needs")
    if not overwrite:
        existing = [p for p in paths.values() if p.exists()]
        if existing:
            raise InputError(f"{len(existing)} file(s) exist already, e.g. {existing[0]}; pass overwrite=True (--overwrite) to replace them")
    for folder, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
        write_png(tmp, getattr(sample, FIELDS[folder]))
        os.replace(tmp, path)
    return paths


__all__ = ["FIELDS", "LAYOUTS", "SPLITS", "P3M10k", "SplitLayout", "planned_paths", "split_dir", "write_sample"]
