"""``mattezoo data synth`` writes the P3M-10k layout that P3M10k reads back exactly; ``data check``."""

from __future__ import annotations

import numpy as np

from mattezoo.cli import main
from mattezoo.data import P3M10k, SyntheticP3M


def test_synth_round_trip_and_no_overwrite(tmp_path, capsys):
    out = tmp_path / "syn"
    args = ["data", "synth", "--out", str(out), "--n", "3", "--size", "64", "--seed", "7", "--split", "train", "P3M-500-NP"]
    assert main(args) == 0
    for split in ("train", "P3M-500-NP"):
        on_disk, in_memory = P3M10k(out, split, check_sizes=True), SyntheticP3M(split, n=3, size=64, seed=7)
        assert on_disk.names == [in_memory.name(i) for i in range(3)]
        for i in range(3):
            a, b = on_disk[i], in_memory[i]
            for field in ("normal", "blurred", "alpha", "fg", "bg", "facemask"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"{split} {field}")
            assert a.primary == b.primary
            if split != "train":
                np.testing.assert_array_equal(a.trimap, b.trimap)
    assert not (out / "validation" / "P3M-500-P").exists()
    before = (out / "train" / "mask" / f"{SyntheticP3M('train', seed=7).name(0)}.png").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert (out / "train" / "mask" / f"{SyntheticP3M('train', seed=7).name(0)}.png").read_bytes() == before
    assert main(["data", "check", str(out), "--sizes"]) == 0
    assert "P3M-500-NP: 3 samples" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--n", "1", "--size", "big"]) == 2
    assert "--size must be N or HxW" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path)]) == 2
    assert "holds none of the P3M-10k splits" in capsys.readouterr().err
