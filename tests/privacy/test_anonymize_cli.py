"""``mattezoo anonymize``: folders, companions, reports; bad files are reported, inputs never overwritten."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import face_photos as scenes

from mattezoo.cli import main
from mattezoo.images import read_image, write_png


@pytest.fixture
def batch(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_png(src / "astro.png", scenes.astronaut())
    cv2.imwrite(str(src / "coffee.jpg"), cv2.cvtColor(scenes.faceless()["coffee"], cv2.COLOR_RGB2BGR))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    trimaps = tmp_path / "trimaps"
    trimaps.mkdir()
    write_png(trimaps / "astro.png", scenes.hair_trimap())
    write_png(trimaps / "coffee.png", np.zeros((400, 600), np.uint8))
    return tmp_path, {p.name: p.read_bytes() for p in src.iterdir()}


def test_folder_batch_with_report(batch, capsys):
    root, before = batch
    report = root / "report.json"
    rc = main(["anonymize", str(root / "in"), str(root / "out"), "--trimap-dir", str(root / "trimaps"),
               "--masks-out", str(root / "masks"), "--audit", str(report), "--detector", "haar", "--quiet"])
    assert rc == 1  # one unreadable file
    assert {p.name: p.read_bytes() for p in (root / "in").iterdir()} == before  # inputs untouched
    assert sorted(p.name for p in (root / "out").iterdir()) == ["astro.png", "coffee.png"]
    data = json.loads(report.read_text())
    images = {r["input"].rsplit("/", 1)[1]: r for r in data["images"]}
    assert "not a readable image" in images["broken.png"]["error"]
    assert images["coffee.jpg"]["no_face"] and images["coffee.jpg"]["audit"]["passed"]
    astro = images["astro.png"]
    assert len(astro["faces"]) == 1 and astro["audit"]["passed"]
    assert astro["audit"]["faces"][0]["descriptor_distance"] > 0.6
    assert data["summary"] == {"images": 3, "faces": 1, "no_face": 1, "errors": 1, "audit_failed": 0}
    # The written image keeps trimap==128 and unmasked pixels bit-identical; the mask is 0/255.
    out, mask = read_image(root / "out" / "astro.png"), cv2.imread(str(root / "masks" / "astro.png"), cv2.IMREAD_UNCHANGED)
    keep = (mask == 0) | (scenes.hair_trimap() == 128)
    assert np.array_equal(out[keep], scenes.astronaut()[keep]) and set(np.unique(mask)) == {0, 255}
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.png" in err and "no face found" in err


def test_single_file_and_refusals(batch, capsys):
    root, _ = batch
    src = root / "in" / "astro.png"
    assert main(["anonymize", str(src), str(root / "one.png"), "--detector", "haar"]) == 0
    assert read_image(root / "one.png").shape == (512, 512, 3)
    assert main(["anonymize", str(src), str(src)]) == 2  # would overwrite its input
    assert main(["anonymize", str(src), str(root / "one.jpg")]) == 2  # lossy output refused
    assert main(["anonymize", str(root / "in"), str(root / "in")]) == 2  # same folder
    assert main(["anonymize", str(root / "nope"), str(root / "x")]) == 2
    err = capsys.readouterr().err
    assert "overwrite" in err and ".png" in err and "input folder" in err and "no such file" in err


def test_missing_companion_is_reported_per_image(batch):
    root, _ = batch
    (root / "trimaps" / "coffee.png").unlink()
    report = root / "r.json"
    main(["anonymize", str(root / "in"), str(root / "out"), "--trimap-dir", str(root / "trimaps"), "--detector", "haar", "--audit", str(report), "--quiet"])
    images = {r["input"].rsplit("/", 1)[1]: r for r in json.loads(report.read_text())["images"]}
    assert "no trimap for 'coffee'" in images["coffee.jpg"]["error"]
    assert images["astro.png"]["error"] is None
