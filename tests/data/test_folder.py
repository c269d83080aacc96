"""FolderDataset: pairing, blurred twins from mattezoo.privacy, and the on-disk twin cache."""

from __future__ import annotations

import numpy as np
import pytest

import mattezoo.privacy
from mattezoo.data import FolderDataset, SyntheticP3M
from mattezoo.errors import InputError
from mattezoo.images import write_png


@pytest.fixture
def folders(tmp_path):
    ds = SyntheticP3M("P3M-500-NP", n=6, size=96, seed=4)
    faces = [ds[i] for i in range(len(ds)) if ds[i].meta["faces"]][:3]
    dirs = {k: tmp_path / k for k in ("images", "alphas", "masks")}
    for d in dirs.values():
        d.mkdir()
    for s in faces:
        write_png(dirs["images"] / f"{s.name}.png", s.normal)
        write_png(dirs["alphas"] / f"{s.name}.png", s.alpha)
        write_png(dirs["masks"] / f"{s.name}.png", s.facemask)
    return dirs, faces


def test_twins_blur_only_the_given_faces_and_are_cached(folders, tmp_path, monkeypatch):
    dirs, faces = folders
    cache = tmp_path / "cache"
    ds = FolderDataset(dirs["images"], dirs["alphas"], facemasks=dirs["masks"], cache_dir=cache)
    assert len(ds) == len(faces) and ds.names == sorted(s.name for s in faces)
    for s in ds:
        ref = next(f for f in faces if f.name == s.name)
        np.testing.assert_array_equal(s.normal, ref.normal)
        np.testing.assert_allclose(s.alpha, ref.alpha, atol=1e-6)
        changed = (s.blurred != s.normal).any(-1)
        assert changed.any() and not (changed & (s.facemask == 0)).any()
        assert s.primary == "normal" and s.meta["faces"] >= 1
    assert ds.cache_misses == len(faces) and ds.cache_hits == 0
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == len(faces) and not [p for p in entries if p.name.startswith(".")]

    def refuse(*args, **kwargs):
        raise AssertionError("anonymize must not run when the twin is cached")

    monkeypatch.setattr(mattezoo.privacy, "anonymize", refuse)
    again = FolderDataset(dirs["images"], dirs["alphas"], facemasks=dirs["masks"], cache_dir=cache)
    for i in range(len(again)):
        np.testing.assert_array_equal(again[i].blurred, ds[i].blurred)
    assert again.cache_hits == len(faces) and again.cache_misses == 0
    monkeypatch.undo()

    stronger = FolderDataset(dirs["images"], dirs["alphas"], facemasks=dirs["masks"], cache_dir=cache, anonymize_options={"strength": 0.4})
    assert stronger.prepare() == len(faces)  # other settings, other keys
    entries[0].write_bytes(b"broken")  # an unreadable entry is made again
    assert FolderDataset(dirs["images"], dirs["alphas"], facemasks=dirs["masks"], cache_dir=cache).prepare() == 1


def test_no_face_found_leaves_the_image(folders, tmp_path):
    dirs, _ = folders
    ds = FolderDataset(dirs["images"], dirs["alphas"], cache_dir=tmp_path / "c", detector="haar")
    s = ds[0]
    if s.meta["no_face"]:
        np.testing.assert_array_equal(s.blurred, s.normal)
        assert not s.facemask.any()
    else:
        assert not ((s.blurred != s.normal).any(-1) & (s.facemask == 0)).any()
    plain = FolderDataset(dirs["images"], dirs["alphas"], twins=False)
    assert plain[0].blurred is None and plain[0].facemask is None


def test_pairing_and_size_errors(folders, tmp_path):
    dirs, faces = folders
    extra = dirs["alphas"] / "stray.png"
    write_png(extra, np.zeros((96, 96), np.uint8))
    with pytest.raises(InputError, match=r"unpaired files: alpha files 'stray' have no image"):
        FolderDataset(dirs["images"], dirs["alphas"])
    extra.unlink()
    (dirs["alphas"] / f"{faces[0].name}.png").unlink()
    with pytest.raises(InputError, match=f"no alpha for '{faces[0].name}'"):
        FolderDataset(dirs["images"], dirs["alphas"])
    write_png(dirs["alphas"] / f"{faces[0].name}.png", np.zeros((90, 96), np.uint8))
    ds = FolderDataset(dirs["images"], dirs["alphas"], cache_dir=tmp_path / "c")
    with pytest.raises(InputError, match=r"is 90×96 but its image .* is 96×96"):
        ds[ds.names.index(faces[0].name)]
    with pytest.raises(InputError, match="is not a folder"):
        FolderDataset(tmp_path / "missing", dirs["alphas"])
    with pytest.raises(InputError, match="no such file"):
        FolderDataset([tmp_path / "x.png"], dirs["alphas"])
