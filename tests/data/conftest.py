"""Tiny P3M-10k-layout trees built in tmp_path, good and broken."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mattezoo.images import write_png

TEST_FOLDERS = {
    "train": ("train", ("blurred_image", "mask", "fg", "bg")),
    "P3M-500-P": ("validation/P3M-500-P", ("blurred_image", "mask", "trimap")),
    "P3M-500-NP": ("validation/P3M-500-NP", ("original_image", "mask", "trimap")),
}


def _content(folder: str, rng, h: int, w: int) -> np.ndarray:
    if folder == "mask":
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    if folder == "trimap":
        return rng.choice(np.array([0, 128, 255], dtype=np.uint8), size=(h, w))
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def build_tree(root: Path, names=("p_0001", "p_0002"), size=(12, 16), flat: bool = False, seed: int = 0) -> dict:
    """Write every split with random content; returns {split: {folder: {name: array}}}."""
    rng = np.random.default_rng(seed)
    written: dict = {}
    for split, (rel, folders) in TEST_FOLDERS.items():
        base = root / (rel.split("/")[-1] if flat else rel)
        written[split] = {}
        for folder in folders:
            (base / folder).mkdir(parents=True, exist_ok=True)
            written[split][folder] = {}
            for name in names:
                arr = _content(folder, rng, *size)
                write_png(base / folder / f"{name}.png", arr)
                written[split][folder][name] = arr
    return written


@pytest.fixture
def tree_builder():
    return build_tree


@pytest.fixture
def p3m_tree(tmp_path):
    root = tmp_path / "P3M-10k"
    return root, build_tree(root)
