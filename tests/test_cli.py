import json
import subprocess
import sys

import numpy as np
import pytest

import mattezoo

from mattezoo.cli import main
from mattezoo.images import read_matte, write_png
from mattezoo.testing import registered_plugin, sample_inputs
from toy_plugins import ToyPlugin


@pytest.fixture
def toys():
    with registered_plugin(ToyPlugin(), "toys"):
        yield


def test_list_table_and_json(toys, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "NAME" in out and "tiny_net" in out and "trimap-free" in out and "toys" in out
    assert "extension:" in out
    assert main(["list", "--json", "--family", "trimap-based"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in data["methods"]]
    assert names == mattezoo.list_methods(family="trimap-based")
    assert {"luma_fill", "dim", "gca"} <= set(names) and "tiny_net" not in names and "closed_form" not in names
    assert all(m["trimap"] is True for m in data["methods"])


def test_info_shows_options(toys, capsys):
    assert main(["info", "tiny_net"]) == 0
    out = capsys.readouterr().out
    assert "family: trimap-free" in out and "width=4" in out and "makes_trimap: False" in out
    assert main(["info", "p3m_net", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["makes_trimap"] is True


def test_unknown_method_is_a_clean_error(toys, capsys):
    assert main(["info", "tiny_nett"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown matting method 'tiny_nett'" in err and "Did you mean 'tiny_net'" in err


def test_predict_folder_with_a_corrupt_file(toys, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        write_png(src / f"img{i}.png", sample_inputs(20, 24, seed=i)[0])
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["predict", str(src), "--method", "tiny_net", "--out", str(out), "-o", "width=4"]) == 1
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.png" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]
    assert read_matte(out / "img0.png").shape == (20, 24)
    # A second run keeps existing outputs unless told otherwise.
    (src / "broken.png").unlink()
    assert main(["predict", str(src), "--method", "tiny_net", "--out", str(out)]) == 0
    assert "2 existing kept" in capsys.readouterr().out


def test_predict_with_trimaps_and_guards(toys, tmp_path, capsys):
    image, trimap, _ = sample_inputs(16, 16)
    write_png(tmp_path / "a.png", image)
    write_png(tmp_path / "a_trimap.png", trimap)
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "a.png"), "--method", "luma_fill", "--trimap", str(tmp_path / "a_trimap.png"), "--out", str(out)]) == 0
    alpha = read_matte(out / "a.png")
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    assert main(["predict", str(tmp_path / "a.png"), "--method", "luma_fill", "--out", str(out)]) == 2
    assert "pass --trimap" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "a.png"), "--method", "tiny_net", "--out", str(tmp_path)]) == 2
    assert "is the input folder" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "a.png"), "--method", "tiny_net", "-o", "bogus"]) == 2
    assert "not KEY=VALUE" in capsys.readouterr().err


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "mattezoo", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("mattezoo ")
