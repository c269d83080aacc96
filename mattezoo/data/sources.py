"""``--data`` for the PPT benchmark: one string to a train set and the blurred / normal test sets.

Three forms (see :data:`SPEC_FORMS`)::

    synthetic             the embedded SyntheticP3M set, drawn at the preset's size
    p3m10k:PATH           P3M-10k as released (or in the same layout, e.g. `mattezoo data synth`)
    folder:PATH           your own normal portraits: PATH/images, PATH/alphas (+ optional folders)

What the PPT protocols test on, per source
------------------------------------------
The paper's Table 3 tests all four protocols on P3M-500-P, once as released
(face-blurred, "B") and once with its normal originals ("N"): the only
difference between the two test sets is the face obfuscation. The synthetic
source mirrors that exactly: B is the blurred view and N the normal view of
the same synthetic P3M-500-P split, so the "PPT gap" B:N − N:N measures what
training on blurred faces costs on identical test pictures. Its P3M-500-NP-like
split (other people, normal faces) is offered on top as the ``"NP"`` test set
for the Table-4-style view, where the paper tests blurred-trained models on
P3M-500-P and P3M-500-NP.

P3M-10k as released has only blurred training images and a blurred P3M-500-P;
its one normal test set is P3M-500-NP (different people). So it runs B:B (on
P3M-500-P) and B:N (on P3M-500-NP); N:B and N:N need normal originals that the
release lacks and are reported as such. A copy that also holds
``train/original_image`` and ``P3M-500-P/original_image`` (the same layout
with the normal originals) runs all four protocols the way Table 3 does, with
P3M-500-NP as the extra ``"NP"`` set.

``folder:PATH`` holds normal portraits; the blurred twins come from
:mod:`mattezoo.privacy` through :class:`~mattezoo.data.FolderDataset`
(cached on disk). Layout, paired by file stem::

    PATH/images/      normal portraits (required)
    PATH/alphas/      alpha mattes (required)
    PATH/trimaps/     test trimaps, 0/128/255 (optional: made from the matte otherwise)
    PATH/fg/, PATH/bg/, PATH/facemasks/   optional, as FolderDataset takes them

The split is deterministic: every stem gets a SHA-256 rank salted with the
seed, the ``n_test`` lowest ranks are the test set and the rest (up to
``n_train``) the train set. Ranks do not depend on the other files, so adding
portraits moves few images between the two sets. B and N are the blurred and
normal views of the same test portraits, as in Table 3; all four protocols run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .folder import FolderDataset
from .p3m10k import P3M10k
from .sample import Sample, check_index
from .synthetic import SyntheticP3M
from .transforms import scaled_kernel, trimap_from_alpha

SPEC_FORMS = ("synthetic", "p3m10k:PATH", "folder:PATH")
VIEW_LETTERS = {"blurred": "B", "normal": "N"}
# Samples kept in memory per data set at most (the trainer reads the train set many times).
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class TestSet:
    """One test set of a protocol: the data, which image view to feed, and how to name it.

    ``paper_names``: the ``PaperResult.test_set`` labels of rows without a
    protocol that this set stands for (Table 1's "P3M-500-P (blurred)", Table
    4's "P3M-500-NP"); ``paper_protocol_names``: those of rows with a protocol
    (Table 3 tests every protocol on "P3M-500-P", blurred or normal). Only
    P3M-10k sets have them: the paper's numbers mean nothing beside other data.
    """

    key: str
    dataset: Sequence
    view: str
    label: str
    paper_names: tuple[str, ...] = ()
    paper_protocol_names: tuple[str, ...] = ()

    def fingerprint(self) -> dict:
        return {"key": self.key, "view": self.view, "label": self.label, **_names_fingerprint(self.dataset)}


@dataclass
class DataSource:
    """What a ``--data`` string resolves to.

    ``train``: the training samples; ``train_views``: the views they hold
    ("blurred", "normal"); ``tests``: ``{"B": TestSet, "N": TestSet}`` (a key
    is absent when the data has no such test set); ``extra_tests``: further
    test sets for the Table-4 view (``"NP"``); ``missing``: protocol -> why the
    data cannot run it; ``notes``: what a reader of the report must know.
    """

    spec: str
    kind: str
    train: Sequence
    train_views: tuple[str, ...]
    tests: dict[str, TestSet]
    extra_tests: dict[str, TestSet] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    @property
    def is_p3m10k(self) -> bool:
        return self.kind == "p3m10k"

    def test_set(self, key: str) -> TestSet:
        found = self.tests.get(key) or self.extra_tests.get(key)
        if found is None:
            raise InputError(f"data {self.spec!r} has no test set {key!r}; it has {', '.join([*self.tests, *self.extra_tests])}")
        return found

    def can_run(self, protocol: str) -> bool:
        train, test = protocol.split(":")
        view = "blurred" if train == "B" else "normal"
        return protocol not in self.missing and view in self.train_views and test in self.tests

    def fingerprint(self) -> dict:
        """Everything about the data that decides a cell's numbers (part of its cache key)."""
        return {
            "kind": self.kind,
            **self.params,
            "train": _names_fingerprint(self.train),
            "tests": {k: t.fingerprint() for k, t in {**self.tests, **self.extra_tests}.items()},
        }


def sample_names(dataset) -> list[str]:
    """The names of a data set's samples without reading them (``names`` list, ``name(i)``, or numbers)."""
    names = getattr(dataset, "names", None)
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    name = getattr(dataset, "name", None)
    if callable(name):
        return [str(name(i)) for i in range(len(dataset))]
    return [str(i) for i in range(len(dataset))]


def _names_fingerprint(dataset) -> dict:
    names = sample_names(dataset)
    digest = hashlib.sha256("\n".join(map(str, names)).encode()).hexdigest()[:16]
    return {"n": len(dataset), "names": digest}


class CachedSamples(Sequence):
    """A data set whose samples, once read, stay in memory while they fit in ``max_bytes``.

    Rendering a synthetic portrait or decoding a PNG costs far more than
    keeping a small one; the trainer reads its set once per epoch and the
    bench reads each test set for every method.
    """

    def __init__(self, dataset: Sequence, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.dataset = dataset
        self.max_bytes = int(max_bytes)
        self.names = sample_names(dataset)
        self._cache: dict[int, Sample] = {}
        self._bytes = 0

    def __repr__(self) -> str:
        return f"CachedSamples({self.dataset!r})"

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = check_index(index, len(self))
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        sample = self.dataset[i]
        size = sum(a.nbytes for a in sample.arrays().values())
        if self._bytes + size <= self.max_bytes:
            self._cache[i] = sample
            self._bytes += size
        return sample


class Subset(Sequence):
    """The samples of ``dataset`` at ``indices``, in that order, each optionally passed through ``transform``."""

    def __init__(self, dataset: Sequence, indices: Sequence[int], transform=None, label: str = ""):
        self.dataset, self.indices, self.transform = dataset, list(indices), transform
        base = sample_names(dataset)
        self.names = [base[i] for i in self.indices]
        self.label = label

    def __repr__(self) -> str:
        return f"Subset({self.label or type(self.dataset).__name__}, {len(self)} of {len(self.dataset)})"

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        sample = self.dataset[self.indices[check_index(index, len(self))]]
        return self.transform(sample) if self.transform is not None else sample


def shrink_sample(sample: Sample, max_side: int | None) -> Sample:
    """The sample with every array resized so its longer side is at most ``max_side`` (unchanged if it fits).

    Images use area averaging, the matte bilinear; trimaps and face masks
    nearest neighbour, so they keep their 0/128/255 (0/255) values.
    """
    if max_side is None:
        return sample
    h, w = sample.shape
    scale = max_side / max(h, w)
    if scale >= 1:
        return sample
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = {}
    for name, arr in sample.arrays().items():
        interp = cv2.INTER_NEAREST if name in ("trimap", "facemask") else cv2.INTER_LINEAR if name == "alpha" else cv2.INTER_AREA
        out[name] = np.ascontiguousarray(cv2.resize(arr, size, interpolation=interp))
    out["alpha"] = np.clip(out["alpha"], 0.0, 1.0).astype(np.float32)
    return replace(sample, **out, meta={**sample.meta, "resized_from": (h, w)})


def with_test_trimap(sample: Sample) -> Sample:
    """The sample with a fixed test trimap made from its matte when it has none (3% of the short side)."""
    if sample.trimap is not None:
        return sample
    return replace(sample, trimap=trimap_from_alpha(sample.alpha, scaled_kernel(min(sample.shape))))


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """``"synthetic"`` -> ("synthetic", None); ``"p3m10k:/d"`` -> ("p3m10k", Path("/d")); else InputError."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"--data must be one of {', '.join(SPEC_FORMS)}, got {spec!r}")
    kind, sep, path = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "synthetic" and not sep:
        return "synthetic", None
    if kind in ("p3m10k", "folder"):
        if not path:
            raise InputError(f"--data {spec!r}: {kind} needs a folder, as in {kind}:PATH. Valid forms: {', '.join(SPEC_FORMS)}")
        root = Path(path).expanduser()
        if not root.is_dir():
            raise InputError(f"--data {spec!r}: {str(root)!r} is not a folder. Valid forms: {', '.join(SPEC_FORMS)}")
        return kind, root
    raise InputError(f"--data {spec!r} is not a data source. Valid forms: {', '.join(SPEC_FORMS)}")


def _check_count(name: str, value, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer{' or None (all)' if allow_none else ''}, got {value!r}")
    return int(value)


def open_source(spec: str, *, size: int = 128, n_train: int | None = 64, n_test: int | None = 8, seed: int = 0, max_side: int | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES) -> DataSource:
    """Resolve a ``--data`` string (:data:`SPEC_FORMS`) into the train set and the PPT test sets.

    :param size: side of the synthetic portraits (ignored by real data).
    :param n_train: training samples to use (``None``: all; synthetic needs a number).
    :param n_test: test samples per test set (``None``: all; synthetic needs a number).
    :param seed: the synthetic set's seed, and the salt of the folder split.
    :param max_side: real data only: shrink test and train images whose longer
        side exceeds this (``None``: native resolution, as the paper).
    """
    kind, root = parse_spec(spec)
    n_train = _check_count("n_train", n_train, allow_none=kind != "synthetic")
    n_test = _check_count("n_test", n_test, allow_none=kind != "synthetic")
    max_side = _check_count("max_side", max_side)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if kind == "synthetic":
        return _synthetic(spec, size, n_train, n_test, int(seed), cache_bytes)
    if kind == "p3m10k":
        return _p3m10k(spec, root, n_train, n_test, max_side, cache_bytes)
    return _folder(spec, root, n_train, n_test, int(seed), max_side, cache_bytes)


def _synthetic(spec, size, n_train, n_test, seed, cache_bytes) -> DataSource:
    train = CachedSamples(SyntheticP3M("train", n_train, size, seed), cache_bytes)
    private = CachedSamples(SyntheticP3M("P3M-500-P", n_test, size, seed), cache_bytes)
    public = CachedSamples(SyntheticP3M("P3M-500-NP", n_test, size, seed), cache_bytes)
    return DataSource(
        spec=spec,
        kind="synthetic",
        train=train,
        train_views=("blurred", "normal"),
        tests={
            "B": TestSet("B", private, "blurred", "synthetic P3M-500-P (blurred)"),
            "N": TestSet("N", private, "normal", "synthetic P3M-500-P (normal)"),
        },
        extra_tests={"NP": TestSet("NP", public, "normal", "synthetic P3M-500-NP (normal, other people)")},
        notes=[
            f"Synthetic portraits at {size}×{size} px, seed {seed}: {n_train} training images (both twins) and "
            f"{n_test} test images per set. As in the paper's Table 3, B and N are the blurred and the normal "
            "version of the same test portraits (synthetic P3M-500-P); the Table-4 view adds B-trained models "
            "on the synthetic P3M-500-NP (other people, normal faces)."
        ],
        params={"size": size, "n_train": n_train, "n_test": n_test, "seed": seed},
    )


def _first(dataset, n, transform=None, label=""):
    count = len(dataset) if n is None else min(n, len(dataset))
    return Subset(dataset, range(count), transform, label)


def _p3m10k(spec, root, n_train, n_test, max_side, cache_bytes) -> DataSource:
    train_full = P3M10k(root, "train")
    private = P3M10k(root, "P3M-500-P")
    public = P3M10k(root, "P3M-500-NP")
    shrink = (lambda s: shrink_sample(s, max_side)) if max_side else None
    train = CachedSamples(_first(train_full, n_train, shrink, "P3M-10k train"), cache_bytes)
    p_set = CachedSamples(_first(private, n_test, shrink, "P3M-500-P"), cache_bytes)
    np_set = CachedSamples(_first(public, n_test, shrink, "P3M-500-NP"), cache_bytes)
    has_normal_train = "original_image" in train_full.folders
    has_normal_private = "original_image" in private.folders
    notes = [f"P3M-10k at {root}: {len(train)} of {len(train_full)} training images, {len(p_set)} of P3M-500-P, {len(np_set)} of P3M-500-NP" + (f", images shrunk to at most {max_side} px per side" if max_side else ", native resolution") + "."]
    tests = {"B": TestSet("B", p_set, "blurred", "P3M-500-P (blurred)", ("P3M-500-P", "P3M-500-P (blurred)"), ("P3M-500-P",))}
    extra, missing = {}, {}
    if has_normal_train and has_normal_private:
        tests["N"] = TestSet("N", p_set, "normal", "P3M-500-P (normal)", ("P3M-500-P (normal)",), ("P3M-500-P",))
        extra["NP"] = TestSet("NP", np_set, "normal", "P3M-500-NP", ("P3M-500-NP",))
        views = ("blurred", "normal")
        notes.append("This copy holds the normal originals of the training set and of P3M-500-P, so all four protocols run as in the paper's Table 3.")
    else:
        tests["N"] = TestSet("N", np_set, "normal", "P3M-500-NP", ("P3M-500-NP",))
        views = ("blurred",)
        reason = "needs normal originals the release lacks (train/original_image)"
        missing = {"N:B": reason, "N:N": reason}
        notes.append(
            "P3M-10k as released has only blurred training images and a blurred P3M-500-P: B:B runs on P3M-500-P, "
            "B:N on P3M-500-NP (normal faces, other people, as in the paper's Table 4); N:B and N:N "
            "need normal originals the release lacks."
        )
    return DataSource(
        spec=spec, kind="p3m10k", train=train, train_views=views, tests=tests, extra_tests=extra,
        missing=missing, notes=notes,
        params={"root": str(root.resolve()), "n_train": n_train, "n_test": n_test, "max_side": max_side},
    )


FOLDER_LAYOUT = {"images": "images", "alphas": "alphas", "trimaps": "trimaps", "fg": "fg", "bg": "bg", "facemasks": "facemasks"}


def split_rank(name: str, seed: int) -> str:
    """The folder split's sort key of one file stem: independent of every other file."""
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _folder(spec, root, n_train, n_test, seed, max_side, cache_bytes) -> DataSource:
    for required in ("images", "alphas"):
        if not (root / required).is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise InputError(
                f"--data {spec!r}: {root} has no {required}/ folder; folder:PATH needs PATH/images and PATH/alphas "
                f"(optional: trimaps, fg, bg, facemasks). It holds: {', '.join(present) or 'no folders'}"
            )
    optional = {key: root / folder for key, folder in (("trimaps", "trimaps"), ("fg", "fg"), ("bg", "bg"), ("facemasks", "facemasks")) if (root / folder).is_dir()}
    full = FolderDataset(root / "images", root / "alphas", **optional)
    if len(full) < 2:
        raise InputError(f"--data {spec!r}: {len(full)} portrait(s) found; a train/test split needs at least 2")
    order = sorted(range(len(full)), key=lambda i: split_rank(full.names[i], seed))
    n_test_eff = n_test if n_test is not None else max(1, len(full) // 10)
    n_test_eff = min(n_test_eff, len(full) - 1)
    test_idx = sorted(order[:n_test_eff])
    train_idx = sorted(order[n_test_eff:])[: n_train if n_train is not None else None]

    def test_transform(s):
        return with_test_trimap(shrink_sample(s, max_side))

    train = CachedSamples(Subset(full, train_idx, (lambda s: shrink_sample(s, max_side)) if max_side else None, "folder train"), cache_bytes)
    test = CachedSamples(Subset(full, test_idx, test_transform, "folder test"), cache_bytes)
    trimap_note = "its own trimaps" if "trimaps" in optional else "trimaps made from the mattes (3% of the short side)"
    return DataSource(
        spec=spec, kind="folder", train=train, train_views=("blurred", "normal"),
        tests={
            "B": TestSet("B", test, "blurred", "folder test (blurred)"),
            "N": TestSet("N", test, "normal", "folder test (normal)"),
        },
        notes=[
            f"Your portraits at {root}: {len(train)} for training, {len(test)} for testing (deterministic split, seed {seed}), "
            f"with {trimap_note}; blurred twins made by mattezoo.privacy (cached). B and N are the blurred and normal "
            "version of the same test portraits, as in the paper's Table 3."
        ],
        params={"root": str(root.resolve()), "n_train": n_train, "n_test": n_test, "seed": seed, "max_side": max_side},
    )


__all__ = ["SPEC_FORMS", "CachedSamples", "DataSource", "Subset", "TestSet", "open_source", "parse_spec", "shrink_sample", "split_rank", "with_test_trimap"]
