"""--data: the synthetic, P3M-10k and folder sources and what each can run."""

from __future__ import annotations

import numpy as np
import pytest

from mattezoo.data import SyntheticP3M, open_source, write_sample
from mattezoo.data.sources import shrink_sample, split_rank
from mattezoo.errors import InputError
from mattezoo.images import write_png


def test_synthetic_tests_are_twins_of_one_split():
    src = open_source("synthetic", size=48, n_train=3, n_test=2, seed=5)
    assert src.train_views == ("blurred", "normal") and len(src.train) == 3
    b, n = src.tests["B"], src.tests["N"]
    # Table 3: B and N are the same portraits, blurred and normal.
    assert b.dataset is n.dataset and (b.view, n.view) == ("blurred", "normal")
    s = b.dataset[0]
    assert s.name == SyntheticP3M("P3M-500-P", 2, 48, 5).name(0) and s.trimap is not None
    assert src.extra_tests["NP"].dataset[0].identity != s.identity
    assert all(src.can_run(p) for p in ("B:B", "B:N", "N:B", "N:N")) and not src.missing
    # Samples are read once and kept.
    assert b.dataset[0] is s


def test_p3m10k_release_lacks_normal_training(tmp_path):
    for split, n in (("train", 2), ("P3M-500-P", 2), ("P3M-500-NP", 1)):
        for s in SyntheticP3M(split, n, 40, 0):
            if split != "P3M-500-NP":
                s.normal = None
            else:
                s.blurred = None
            write_sample(tmp_path, split, s)
    src = open_source(f"p3m10k:{tmp_path}", n_train=None, n_test=None)
    assert src.train_views == ("blurred",) and src.is_p3m10k
    assert src.tests["N"].label == "P3M-500-NP" and src.tests["N"].view == "normal" and len(src.tests["N"].dataset) == 1
    assert set(src.missing) == {"N:B", "N:N"} and "release lacks" in src.missing["N:B"]
    assert src.can_run("B:N") and not src.can_run("N:N")


def _folder(root, n=5, size=40):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "alphas").mkdir()
    for i in range(n):
        img = rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)
        alpha = np.zeros((size, size + 8), np.uint8)
        alpha[10:30, 12:36] = 255
        alpha[9, 12:36] = 128
        write_png(root / "images" / f"p{i}.png", img)
        write_png(root / "alphas" / f"p{i}.png", alpha)


def test_folder_split_is_deterministic_and_disjoint(tmp_path, monkeypatch):
    monkeypatch.setenv("MATTEZOO_CACHE", str(tmp_path / "cache"))
    _folder(tmp_path / "mine")
    a = open_source(f"folder:{tmp_path / 'mine'}", n_train=None, n_test=2, seed=3)
    b = open_source(f"folder:{tmp_path / 'mine'}", n_train=None, n_test=2, seed=3)
    test_names = a.tests["B"].dataset.names
    assert test_names == b.tests["B"].dataset.names and len(test_names) == 2
    assert not set(test_names) & set(a.train.names) and len(a.train) == 3
    assert test_names == sorted(sorted(test_names + a.train.names, key=lambda s: split_rank(s, 3))[:2])
    s = a.tests["N"].dataset[0]
    # No trimaps folder: a fixed test trimap is made from the matte; the blurred twin exists.
    assert s.trimap is not None and set(np.unique(s.trimap)) <= {0, 128, 255} and s.blurred is not None
    assert all(a.can_run(p) for p in ("B:B", "B:N", "N:B", "N:N"))


def test_shrink_keeps_label_values():
    s = SyntheticP3M("P3M-500-P", 1, 64, 0)[0]
    small = shrink_sample(s, 32)
    assert small.shape == (32, 32) and set(np.unique(small.trimap)) <= {0, 128, 255}
    assert small.alpha.dtype == np.float32 and 0 <= small.alpha.min() and small.alpha.max() <= 1
    assert shrink_sample(s, 64) is s


@pytest.mark.parametrize("spec", ["", "synth", "p3m10k", "p3m10k:/no/such/dir", "folder:", "synthetic:x"])
def test_bad_spec_names_valid_forms(spec):
    with pytest.raises(InputError) as info:
        open_source(spec)
    assert all(form in str(info.value) for form in ("synthetic", "p3m10k:PATH", "folder:PATH"))


def test_folder_without_alphas_says_layout(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(InputError, match="PATH/images and PATH/alphas"):
        open_source(f"folder:{tmp_path}")
