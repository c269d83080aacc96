"""Command-line errors of `python -m mattezoo.bench` / `mattezoo bench` name the valid choices."""

from __future__ import annotations

import pytest

from mattezoo.bench.cli import main
from mattezoo.bench.plan import parse_methods, parse_protocols
from mattezoo.cli import main as mattezoo_main
from mattezoo.errors import InputError


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--data", "imagenet"], ["synthetic", "p3m10k:PATH", "folder:PATH"]),
        (["--methods", "closed_from"], ["closed_form", "knn", "p3m_net"]),
        (["--protocols", "B:X"], ["B:B", "B:N", "N:B", "N:N"]),
        (["--preset", "huge"], ["quick", "standard", "paper"]),
        (["--preset", "paper"], ["--data", "p3m10k"]),
        (["--steps", "0"], ["--steps", "positive"]),
    ],
)
def test_bad_arguments_name_valid_choices(argv, expected, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert all(e in err for e in expected), err
    assert not (tmp_path / "out").exists()


def test_mattezoo_bench_subcommand_is_wired(tmp_path, capsys):
    assert mattezoo_main(["bench", "--protocols", "N:Q", "--out", str(tmp_path)]) == 2
    assert "Valid protocols: B:B, B:N, N:B, N:N" in capsys.readouterr().err


def test_parse_methods_and_protocols():
    assert parse_protocols("n:n, b:b") == ["B:B", "N:N"] and parse_protocols("all") == ["B:B", "B:N", "N:B", "N:N"]
    assert {"closed_form", "knn"} <= set(parse_methods("all"))
    assert parse_methods("knn,closed_form,knn") == ["knn", "closed_form"]
    with pytest.raises(InputError, match="empty"):
        parse_protocols(" , ")
