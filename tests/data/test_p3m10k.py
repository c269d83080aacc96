"""P3M10k on small trees in the release layout: reading back exactly, and clear errors for broken ones."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mattezoo.data import P3M10k
from mattezoo.errors import InputError
from mattezoo.images import write_png


@pytest.mark.parametrize("split", ["train", "P3M-500-P", "P3M-500-NP"])
def test_reads_every_folder_exactly(p3m_tree, split):
    root, written = p3m_tree
    ds = P3M10k(root, split, check_sizes=True)
    assert len(ds) == 2 and ds.names == ["p_0001", "p_0002"]
    s = ds[1]
    files = written[split]
    image_folder = "original_image" if split == "P3M-500-NP" else "blurred_image"
    np.testing.assert_array_equal(s.image, files[image_folder]["p_0002"])
    assert s.primary == ("normal" if split == "P3M-500-NP" else "blurred")
    np.testing.assert_allclose(s.alpha, files["mask"]["p_0002"] / 255.0, atol=1e-6)
    assert s.alpha.dtype == np.float32
    if split == "train":
        np.testing.assert_array_equal(s.fg, files["fg"]["p_0002"])
        np.testing.assert_array_equal(s.bg, files["bg"]["p_0002"])
        assert s.trimap is None
    else:
        np.testing.assert_array_equal(s.trimap, files["trimap"]["p_0002"])


def test_split_aliases_and_flat_layout(tmp_path, tree_builder):
    tree_builder(tmp_path, flat=True)  # P3M-500-P/ directly under the root
    assert len(P3M10k(tmp_path, "p3m500p")) == 2
    assert P3M10k(tmp_path, "500-NP").split == "P3M-500-NP"


def test_optional_facemask_and_twin_folders(p3m_tree):
    root, written = p3m_tree
    base = root / "train"
    for sub in ("facemask", "original_image"):
        (base / sub).mkdir()
    for name in ("p_0001", "p_0002"):
        write_png(base / "facemask" / f"{name}.png", np.full((12, 16), 7, np.uint8))
        write_png(base / "original_image" / f"{name}.png", np.zeros((12, 16, 3), np.uint8))
    s = P3M10k(root, "train")[0]
    assert s.facemask.dtype == np.uint8 and set(np.unique(s.facemask)) == {255}
    np.testing.assert_array_equal(s.view("N"), 0)
    np.testing.assert_array_equal(s.view("B"), written["train"]["blurred_image"]["p_0001"])


def test_missing_split_and_root(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        P3M10k(tmp_path / "nope", "train")
    with pytest.raises(InputError, match=r"split 'train'.*lacks the folder\(s\) blurred_image, mask"):
        (tmp_path / "train").mkdir()
        P3M10k(tmp_path, "train")
    with pytest.raises(InputError, match="not found"):
        P3M10k(tmp_path, "P3M-500-P")
    with pytest.raises(InputError, match=r"unknown split 'validation'\. Valid splits: train, P3M-500-P, P3M-500-NP"):
        P3M10k(tmp_path, "validation")


def test_missing_folder_names_what_is_needed(p3m_tree):
    root, _ = p3m_tree
    shutil.rmtree(root / "validation" / "P3M-500-P" / "trimap")
    with pytest.raises(InputError, match=r"lacks the folder\(s\) trimap; it needs blurred_image, mask, trimap"):
        P3M10k(root, "P3M-500-P")


def test_unpaired_files(p3m_tree):
    root, _ = p3m_tree
    (root / "train" / "mask" / "p_0002.png").unlink()
    write_png(root / "train" / "fg" / "p_0099.png", np.zeros((12, 16, 3), np.uint8))
    with pytest.raises(InputError, match=r"unpaired files: mask/ lacks 'p_0002'; fg/ has 'p_0099' with no image in blurred_image/"):
        P3M10k(root, "train")


def test_duplicate_names_and_empty_split(p3m_tree):
    root, _ = p3m_tree
    mask_dir = root / "validation" / "P3M-500-NP" / "mask"
    shutil.copy(mask_dir / "p_0001.png", mask_dir / "p_0001.jpg")
    with pytest.raises(InputError, match="two files for 'p_0001'"):
        P3M10k(root, "P3M-500-NP")
    for f in (root / "train" / "blurred_image").iterdir():
        f.unlink()
    with pytest.raises(InputError, match="holds no images"):
        P3M10k(root, "train")


def test_size_mismatch(p3m_tree):
    root, _ = p3m_tree
    write_png(root / "validation" / "P3M-500-P" / "mask" / "p_0002.png", np.zeros((12, 15), np.uint8))
    ds = P3M10k(root, "P3M-500-P")  # pairing is fine; sizes are checked on read
    ds[0]
    with pytest.raises(InputError, match=r"'p_0002': size mismatch: blurred_image/ is 12×16 but mask/p_0002.png is 12×15"):
        ds[1]
    with pytest.raises(InputError, match=r"size mismatch in 1 sample.*mask/p_0002.png is 12×15"):
        P3M10k(root, "P3M-500-P", check_sizes=True)


def test_bad_trimap_values_and_unreadable_file(p3m_tree):
    root, _ = p3m_tree
    base = root / "validation" / "P3M-500-NP"
    write_png(base / "trimap" / "p_0001.png", np.full((12, 16), 77, np.uint8))
    with pytest.raises(InputError, match=r"values other than 0 \(background\), 128 \(unknown\) and 255"):
        P3M10k(root, "P3M-500-NP")[0]
    (base / "mask" / "p_0002.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable image"):
        P3M10k(root, "P3M-500-NP")[1]


def test_bad_index(p3m_tree):
    root, _ = p3m_tree
    ds = P3M10k(root, "train")
    with pytest.raises(IndexError, match=r"sample index 5 is out of range for 2 samples \(valid: 0..1 or -2..-1\)") as info:
        ds[5]
    assert isinstance(info.value, InputError)
    assert ds[-1].name == "p_0002" and len(list(ds)) == 2
    with pytest.raises(InputError, match="index must be an integer"):
        ds["p_0001"]


def test_release_suffixes_jpg_images_png_mattes(tmp_path):
    import cv2

    base = tmp_path / "validation" / "P3M-500-NP"
    for sub in ("original_image", "mask", "trimap"):
        (base / sub).mkdir(parents=True)
    image = np.full((10, 14, 3), 120, np.uint8)
    cv2.imwrite(str(base / "original_image" / "p_abc.jpg"), image)
    write_png(base / "mask" / "p_abc.png", np.full((10, 14), 255, np.uint8))
    write_png(base / "trimap" / "p_abc.png", np.full((10, 14), 128, np.uint8))
    s = P3M10k(tmp_path, "P3M-500-NP", check_sizes=True)[0]
    assert s.name == "p_abc" and s.normal.shape == (10, 14, 3)
    assert np.abs(s.normal.astype(int) - 120).max() <= 2 and (s.alpha == 1).all()
