"""The worked third-party plugin in examples/, installed with pip and used like any other.

The example is installed (non-editable, from a copy so the source tree stays
clean) into the running interpreter's environment for this module and
uninstalled afterwards. Everything then goes through the public paths a user
takes: entry-point discovery, ``list_methods``, ``mattezoo list``,
``predict`` and the conformance helper.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import mattezoo
from mattezoo import InputError, InvalidOptionError, UnknownMethodError, plugins
from mattezoo.cli import main as cli_main
from mattezoo.inference import image_to_tensor, trimap_to_tensor
from mattezoo.testing import run_conformance, sample_inputs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mattezoo-guided-matting"
GUIDE = ROOT / "docs" / "writing-a-plugin.md"
DISTRIBUTION = "mattezoo-guided-matting"
PLUGIN = "guided_matting"  # the entry-point name, which is also the method's name
PACKAGE = "mattezoo_guided_matting"


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _forget_imported_package() -> None:
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install the example for this module's tests; uninstall it afterwards."""
    source = tmp_path_factory.mktemp("example") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    # No isolation and no deps: setuptools and wheel are already here, and
    # nothing may be downloaded.
    _pip("install", "--no-deps", "--no-build-isolation", str(source))
    _forget_imported_package()
    plugins.reset_plugin_manager()
    try:
        yield
    finally:
        _pip("uninstall", "--yes", DISTRIBUTION)
        _forget_imported_package()
        plugins.reset_plugin_manager()


def _example_module(name: str):
    return importlib.import_module(f"{PACKAGE}.{name}")


# ---------------------------------------------------------------------------
# Discovery: registry, CLI, blocking
# ---------------------------------------------------------------------------


def test_found_through_its_entry_point(installed_example):
    assert PLUGIN in mattezoo.list_methods()
    assert PLUGIN in mattezoo.list_methods("guided*", family="classical")
    spec = mattezoo.get_method(PLUGIN)
    assert (spec.family, spec.plugin, spec.needs_trimap) == ("classical", PLUGIN, True)
    info = plugins.get_plugin_manager().info[PLUGIN]
    assert info.distribution == DISTRIBUTION
    assert info.module == f"{PACKAGE}.plugin"
    assert info.version == "0.1.0"
    assert not [f for f in plugins.get_plugin_manager().failures if f.name == PLUGIN]


def _row_of(output: str, name: str) -> str:
    rows = [line for line in output.splitlines() if line.split()[:1] == [name]]
    assert len(rows) == 1, f"expected one row for {name} in:\n{output}"
    return rows[0]


def test_cli_list_shows_method_and_package(installed_example, capsys):
    assert cli_main(["list"]) == 0
    row = _row_of(capsys.readouterr().out, PLUGIN)
    assert row.split()[:5] == [PLUGIN, "classical", "yes", PLUGIN, DISTRIBUTION]

    assert cli_main(["list", "--json", "--family", "classical"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["methods"]}
    assert listed[PLUGIN]["package"] == DISTRIBUTION


def test_cli_list_in_a_new_process(installed_example, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != plugins.DISABLE_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "mattezoo", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert _row_of(done.stdout, PLUGIN).split()[:5] == [PLUGIN, "classical", "yes", PLUGIN, DISTRIBUTION]


def test_blocked_by_environment(installed_example, monkeypatch, fresh_plugins):
    monkeypatch.setenv(plugins.DISABLE_ENV, PLUGIN)
    plugins.reset_plugin_manager()
    assert PLUGIN not in mattezoo.list_methods()
    assert PLUGIN not in plugins.get_plugin_manager().info
    image, trimap, _ = sample_inputs(16, 16)
    with pytest.raises(UnknownMethodError, match=PLUGIN):
        mattezoo.predict(PLUGIN, image, trimap)


# ---------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------


def test_predict_by_name(installed_example):
    image, trimap, truth = sample_inputs(48, 56)
    alpha = mattezoo.predict(PLUGIN, image, trimap)
    assert alpha.shape == (48, 56) and alpha.dtype == np.float32
    assert np.array_equal(alpha[trimap == 255], np.ones((trimap == 255).sum(), np.float32))
    assert np.array_equal(alpha[trimap == 0], np.zeros((trimap == 0).sum(), np.float32))
    unknown = trimap == 128
    assert np.abs(alpha - truth)[unknown].mean() < 0.05  # measured 0.024


def test_conformance(installed_example):
    report = run_conformance(PLUGIN)
    assert {"spec", "create", "predict", "known-regions", "trimap-contract", "batch"} <= set(report.checks)


def _astronaut_over_coffee(size: int = 160):
    """A composite with a known matte: astronaut.png over coffee.png through a wavy soft-edged blob."""
    from skimage import data

    fg = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    bg = cv2.resize(data.coffee(), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = np.arctan2(yy - 0.45, xx - 0.5)
    outline = 0.3 + 0.04 * np.sin(5 * angle) + 0.02 * np.cos(3 * angle)
    ramp = np.clip(0.5 - (np.hypot(yy - 0.45, xx - 0.5) - outline) / 0.05, 0, 1)
    alpha = (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)  # smoothstep: an 8-pixel soft edge
    image = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg) * 255
    soft = ((alpha > 0) & (alpha < 1)).astype(np.uint8)
    unknown = cv2.dilate(soft, np.ones((7, 7), np.uint8)) > 0
    trimap = np.where(alpha >= 1, 255, 0).astype(np.uint8)
    trimap[unknown] = 128
    return image.round().astype(np.uint8), trimap, alpha


def test_accuracy_beats_constant_baseline_on_a_composite(installed_example):
    image, trimap, truth = _astronaut_over_coffee()
    unknown = trimap == 128
    alpha = mattezoo.predict(PLUGIN, image, trimap)
    sad = np.abs(alpha - truth)[unknown].sum()
    mse = np.square(alpha - truth)[unknown].mean()
    baseline_sad = np.abs(0.5 - truth)[unknown].sum()
    baseline_mse = np.square(0.5 - truth)[unknown].mean()
    # Measured: SAD ~0.27 and MSE ~0.16 of the baseline's.
    assert sad < 0.45 * baseline_sad, (sad, baseline_sad)
    assert mse < 0.35 * baseline_mse, (mse, baseline_mse)


def test_two_flat_colours_give_the_exact_blend(installed_example):
    # With one foreground and one background colour the compositing equation
    # has a unique solution, so the matte is known in closed form.
    height, width = 24, 40
    truth = np.tile(np.clip((np.arange(width) - 10) / 20, 0, 1), (height, 1)).astype(np.float32)
    trimap = np.where(truth >= 1, 255, 0).astype(np.uint8)
    trimap[(truth > 0) & (truth < 1)] = 128
    images = []
    for fg, bg in (((0.9, 0.7, 0.2), (0.1, 0.2, 0.6)), ((0.2, 0.8, 0.3), (0.7, 0.1, 0.4))):
        blend = truth[..., None] * np.array(fg) + (1 - truth[..., None]) * np.array(bg)
        images.append(image_to_tensor((blend * 255).round().astype(np.uint8)))
    method = mattezoo.create_method(PLUGIN)
    alpha = mattezoo.run_method(method, torch.cat(images), torch.cat([trimap_to_tensor(trimap)] * 2))
    assert alpha.shape == (2, 1, height, width)
    error = (alpha[:, 0] - torch.from_numpy(truth)).abs().max().item()
    assert error < 0.02, error  # 8-bit quantisation of the blend is the only noise


def test_trimap_without_foreground_still_gives_a_sensible_matte(installed_example):
    # No known foreground anywhere: a red square on a grey background, with
    # only the left edge marked as background. The square is "unlike the
    # background" and must come out as foreground.
    image = np.full((32, 32, 3), 128, np.uint8)
    image[8:24, 12:28] = (220, 30, 30)
    trimap = np.full((32, 32), 128, np.uint8)
    trimap[:, :4] = 0
    alpha = mattezoo.predict(PLUGIN, image, trimap)
    assert np.isfinite(alpha).all() and (alpha[:, :4] == 0).all()
    assert alpha[11:21, 15:25].min() > 0.9, alpha[11:21, 15:25].min()
    assert alpha[:, 4:].mean() < alpha[8:24, 12:28].mean()


@pytest.mark.needs_cuda
def test_cuda_matches_cpu(installed_example):
    image, trimap, _ = sample_inputs(40, 48)
    method = mattezoo.create_method(PLUGIN)
    on_cpu = mattezoo.predict(method, image, trimap, device="cpu")
    on_cuda = mattezoo.predict(method, image, trimap, device="cuda")
    assert np.abs(on_cpu - on_cuda).max() < 1e-5


# ---------------------------------------------------------------------------
# Options and bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"radius": 0}, "radius must be an integer >= 1"),
        ({"radius": 2.5}, "radius must be an integer >= 1"),
        ({"radius": True}, "radius must be an integer >= 1"),
        ({"sample_radius": -3}, "sample_radius must be an integer >= 1"),
        ({"eps": 0.0}, "eps must be a finite number > 0"),
        ({"eps": float("nan")}, "eps must be a finite number > 0"),
        ({"eps": "small"}, "eps must be a finite number > 0"),
        ({"raduis": 4}, "Did you mean 'radius'"),
        ({"device": "cpu"}, "without weights or devices"),
    ],
)
def test_invalid_options_are_refused(installed_example, options, message):
    with pytest.raises(InvalidOptionError, match=message):
        mattezoo.create_method(PLUGIN, **options)


def test_options_reach_the_method(installed_example):
    method = mattezoo.create_method(PLUGIN, radius=3, eps=0.01, sample_radius=2)
    assert repr(method) == "GuidedMatting(radius=3, eps=0.01, sample_radius=2)"
    assert mattezoo.factory.method_options(PLUGIN) == {"radius": 8, "eps": 1e-4, "sample_radius": 4}


def test_bad_input_is_refused_clearly(installed_example):
    method = mattezoo.create_method(PLUGIN)
    image = torch.rand(1, 3, 8, 8)
    trimap = torch.full((1, 1, 8, 8), 0.5)
    with pytest.raises(InputError, match="needs a trimap"):
        method(image, None)
    with pytest.raises(InputError, match=r"0 \(background\), 0.5 \(unknown\) or 1 \(foreground\).*0.3"):
        method(image, trimap.clone().fill_(0.3))
    with pytest.raises(InputError, match=r"must lie in \[0,1\]"):
        method(image * 255, trimap)
    with pytest.raises(InputError, match=r"\[B,1,H,W\]"):
        method(image, trimap[:, :, :4])
    with pytest.raises(InputError, match="empty"):
        method(image[:, :, :0], trimap[:, :, :0])
    with pytest.raises(InputError, match="float RGB"):
        method((image * 255).to(torch.uint8), trimap)
    # Through predict the core's own checks answer first, as for any method.
    with pytest.raises(InputError, match="needs a trimap"):
        mattezoo.predict(method, np.zeros((8, 8, 3), np.uint8))


# ---------------------------------------------------------------------------
# The guided filter against its definition, computed window by window
# ---------------------------------------------------------------------------


def _direct_box_mean(x: np.ndarray, r: int) -> np.ndarray:
    h, w = x.shape[-2:]
    out = np.empty_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[..., i, j] = x[..., max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1].mean(axis=(-2, -1))
    return out


def _direct_guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al. eq. 14 for one image: a ridge fit per window, then every pixel averages its windows' fits."""
    h, w = src.shape
    coeffs = np.empty((h, w, 4))
    for i in range(h):
        for j in range(w):
            win = (slice(max(i - r, 0), i + r + 1), slice(max(j - r, 0), j + r + 1))
            colours = guide[:, win[0], win[1]].reshape(3, -1).T
            values = src[win].ravel()
            mu, mean_p = colours.mean(axis=0), values.mean()
            sigma = (colours - mu).T @ (colours - mu) / len(values)
            cov = (colours - mu).T @ (values - mean_p) / len(values)
            a = np.linalg.solve(sigma + eps * np.eye(3), cov)
            coeffs[i, j] = (*a, mean_p - a @ mu)
    mean_coeffs = _direct_box_mean(coeffs.transpose(2, 0, 1), r)
    return (mean_coeffs[:3] * guide).sum(axis=0) + mean_coeffs[3]


@pytest.mark.parametrize("radius", [1, 3, 30])
def test_box_mean_matches_window_means(installed_example, radius):
    x = torch.rand(2, 3, 9, 13, dtype=torch.float64)
    got = _example_module("guided_filter").box_mean(x, radius)
    np.testing.assert_allclose(got.numpy(), _direct_box_mean(x.numpy(), radius), rtol=0, atol=1e-12)


@pytest.mark.parametrize("radius, eps", [(1, 1e-3), (2, 1e-2), (20, 1e-4)])
def test_guided_filter_matches_definition(installed_example, radius, eps):
    gen = torch.Generator().manual_seed(radius)
    guide = torch.rand(2, 3, 10, 12, generator=gen, dtype=torch.float64)
    src = torch.rand(2, 1, 10, 12, generator=gen, dtype=torch.float64)
    got = _example_module("guided_filter").guided_filter(guide, src, radius, eps)
    for b in range(2):
        expected = _direct_guided_filter(guide[b].numpy(), src[b, 0].numpy(), radius, eps)
        np.testing.assert_allclose(got[b, 0].numpy(), expected, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------
# docs/writing-a-plugin.md stays in step with the example and the core
# ---------------------------------------------------------------------------


def test_guide_quotes_the_example_as_it_is(installed_example):
    guide = GUIDE.read_text(encoding="utf-8")
    pyproject = (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8")
    for line in ("[project.entry-points.mattezoo]", f'{PLUGIN} = "{PACKAGE}.plugin"', f'name = "{DISTRIBUTION}"'):
        assert line in guide and line in pyproject, line
    spec = mattezoo.get_method(PLUGIN)
    for field in ("name", "family", "factory", "summary", "citation"):
        assert f'{field}="{getattr(spec, field)}"' in guide, f"the guide's MethodSpec differs in {field}"


def test_guide_covers_every_spec_field_and_hook():
    guide = GUIDE.read_text(encoding="utf-8")
    for field in dataclasses.fields(mattezoo.MethodSpec):
        assert f"| `{field.name}` |" in guide, f"MethodSpec.{field.name} is not in the guide's field table"
    for hook in (n for n in dir(plugins.make_plugin_manager(builtins=False, entry_points=False).hook) if n.startswith("mattezoo_")):
        assert f"`{hook}(" in guide, f"hook {hook} is not in the guide"
    assert plugins.DISABLE_ENV in guide and "MATTEZOO_WEIGHTS" in guide
