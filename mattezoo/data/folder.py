"""A user's own normal portraits, with face-blurred twins made once and cached on disk.

``FolderDataset(images, alphas)`` pairs files by name stem. The blurred twin
of each portrait comes from :func:`mattezoo.privacy.anonymize` with the alpha
matte, so hair and other transition pixels are never blurred. Twins are
cached under ``cache_dir`` (default ``~/.cache/mattezoo/twins``, or
``$MATTEZOO_CACHE/twins``), keyed by a SHA-256 of the pixels, the matte and
the anonymize settings, and written atomically (temporary file, then rename),
so concurrent loaders and interrupted runs never leave a half-written twin.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..images import IMAGE_SUFFIXES, check_trimap, list_images, read_gray, read_image, read_matte
from .sample import Sample, check_index

CACHE_VERSION = "twin-v1"


def default_cache_dir() -> Path:
    base = os.environ.get("MATTEZOO_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "mattezoo") / "twins"


def _files(spec, what: str) -> dict[str, Path]:
    """A folder or a list of files as {stem: path}."""
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_dir():
            raise InputError(f"{what}: {str(path)!r} is not a folder (give a folder or a list of files)")
        files = list_images(path)
        if not files:
            raise InputError(f"{what}: {str(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    else:
        try:
            files = [Path(f) for f in spec]
        except TypeError:
            raise InputError(f"{what} must be a folder or a list of image files, got {type(spec).__name__}") from None
        for f in files:
            if not f.is_file():
                raise InputError(f"{what}: {str(f)!r}: no such file")
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise InputError(f"{what}: two files share the name {f.stem!r} ({out[f.stem]} and {f}); names pair images with mattes")
        out[f.stem] = f
    return out


def twin_key(image: np.ndarray, alpha: np.ndarray, settings: dict, *extra: np.ndarray) -> str:
    """Content hash of everything that decides a blurred twin (``extra``: e.g. a given face mask)."""
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(np.asarray(image.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(image).tobytes())
    h.update(np.round(alpha * 255.0).astype(np.uint8).tobytes())
    for arr in extra:
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


class FolderDataset(Sequence):
    """Normal portraits with mattes (and optional trimaps, fg, bg, face masks), plus cached blurred twins.

    ``images``/``alphas``/... are folders or lists of files, paired by name stem.
    ``detector`` picks the face finder of :func:`mattezoo.privacy.anonymize`
    (``"auto"``, ``"dlib68"``, ``"haar"``); with ``facemasks`` given, those
    masks are blurred instead (``detector="given"``). ``twins=False`` skips
    the blurred twins altogether.
    """

    def __init__(self, images, alphas, trimaps=None, fg=None, bg=None, *, facemasks=None, cache_dir=None, detector: str = "auto", anonymize_options: dict | None = None, twins: bool = True):
        self.images = _files(images, "images")
        self.names = sorted(self.images)
        self.extra: dict[str, dict[str, Path]] = {"alpha": _files(alphas, "alphas")}
        for field, spec in (("trimap", trimaps), ("fg", fg), ("bg", bg), ("facemask", facemasks)):
            if spec is not None:
                self.extra[field] = _files(spec, field + ("s" if field in ("trimap", "facemask") else ""))
        problems = []
        for field, files in self.extra.items():
            lacking, extra = set(self.names) - set(files), set(files) - set(self.names)
            if lacking:
                problems.append(f"no {field} for {', '.join(repr(n) for n in sorted(lacking)[:5])}")
            if extra:
                problems.append(f"{field} files {', '.join(repr(n) for n in sorted(extra)[:5])} have no image")
        if problems:
            raise InputError("FolderDataset: unpaired files: " + "; ".join(problems))
        self.twins = bool(twins)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.detector = "given" if "facemask" in self.extra else detector
        self.anonymize_options = dict(anonymize_options or {})
        self.cache_hits = self.cache_misses = 0

    def __repr__(self) -> str:
        return f"FolderDataset({len(self)} portraits, fields={['image', *self.extra]}, cache_dir={str(self.cache_dir)!r})"

    def __len__(self) -> int:
        return len(self.names)

    def _read(self, name: str) -> dict:
        image = read_image(self.images[name])
        shape = image.shape[:2]
        out = {"normal": image}
        for field, files in self.extra.items():
            path = files[name]
            if field == "alpha":
                arr = read_matte(path)
            elif field == "trimap":
                arr = check_trimap(read_gray(path), shape, name=str(path))
            elif field == "facemask":
                arr = np.where(read_gray(path) > 0, 255, 0).astype(np.uint8)
            else:
                arr = read_image(path)
            if arr.shape[:2] != shape:
                raise InputError(f"{path} is {arr.shape[0]}×{arr.shape[1]} but its image {self.images[name].name} is {shape[0]}×{shape[1]}; they must match")
            out[field] = arr
        return out

    def _settings(self) -> dict:
        return {"detector": self.detector, **self.anonymize_options}

    def twin(self, image: np.ndarray, alpha: np.ndarray, facemask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
        """``(blurred, facemask, info)`` for one portrait, from the cache or made and cached now."""
        settings = self._settings()
        key = twin_key(image, alpha, settings, *([] if facemask is None else [facemask]))
        path = self.cache_dir / key[:2] / f"{key}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    blurred, mask, info = data["blurred"], data["mask"], json.loads(str(data["info"]))
                if blurred.shape == image.shape and mask.shape == alpha.shape:
                    self.cache_hits += 1
                    return blurred, mask, info
            except (OSError, ValueError, KeyError):
                pass  # an unreadable entry is made again below
        from ..privacy import anonymize

        if facemask is not None:
            result = anonymize(image, alpha=alpha, detector="given", face_mask=facemask, **self.anonymize_options)
        else:
            result = anonymize(image, alpha=alpha, detector=self.detector, **self.anonymize_options)
        info = {"faces": len(result.faces), "no_face": result.no_face, "backend": result.backend}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:12]}.", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, blurred=result.image, mask=result.mask, info=np.array(json.dumps(info)))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.cache_misses += 1
        return result.image, result.mask, info

    def prepare(self) -> int:
        """Make (or find) every blurred twin now; returns how many had to be made."""
        before = self.cache_misses
        for i in range(len(self)):
            self[i]
        return self.cache_misses - before

    def __getitem__(self, index) -> Sample:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = check_index(index, len(self))
        name = self.names[index]
        fields = self._read(name)
        meta = {"path": str(self.images[name])}
        if self.twins:
            blurred, mask, info = self.twin(fields["normal"], fields["alpha"], fields.get("facemask"))
            fields["blurred"], fields["facemask"] = blurred, mask
            meta.update(info)
        return Sample(name=name, primary="normal", meta=meta, **fields)
