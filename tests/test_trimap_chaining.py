"""Trimaps made by a trimap-free method for a trimap-based one: ``predict_trimap`` and ``predict --trimap-from``."""

import numpy as np
import pytest
import torch

import mattezoo
from mattezoo import MethodSpec
from mattezoo.cli import main
from mattezoo.errors import InputError
from mattezoo.images import read_gray, read_matte, write_png
from mattezoo.testing import registered_plugin, run_conformance, sample_inputs
from toy_plugins import KEYER, LUMA, SEGMENTER, TINY, ToyPlugin


@pytest.fixture(autouse=True)
def toys():
    with registered_plugin(ToyPlugin(TINY, LUMA, KEYER, SEGMENTER), "toys"):
        yield


def luma_of(image: np.ndarray) -> np.ndarray:
    rgb = image.astype(np.float64) / 255.0
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def thresholded(image: np.ndarray) -> np.ndarray:
    luma = luma_of(image)
    return np.where(luma < 0.3, 0, np.where(luma > 0.7, 255, 128)).astype(np.uint8)


def gradient_image(height=24, width=30) -> np.ndarray:
    ramp = np.linspace(0, 255, width)[None, :, None].repeat(height, 0).repeat(3, 2)
    return ramp.round().astype(np.uint8)


def test_predict_trimap_returns_the_methods_trimap_as_uint8():
    image = gradient_image()
    trimap = mattezoo.predict_trimap("luma_segmenter", image)
    assert trimap.dtype == np.uint8 and trimap.shape == image.shape[:2]
    expected = thresholded(image)
    # float32 luma against float64 at the two thresholds: allow pixels right at them to differ
    near = np.minimum(np.abs(luma_of(image) - 0.3), np.abs(luma_of(image) - 0.7)) < 1e-5
    np.testing.assert_array_equal(trimap[~near], expected[~near])
    assert {0, 128, 255} == set(np.unique(trimap))


def test_a_trimap_based_method_runs_on_a_made_trimap():
    image = gradient_image()
    made = mattezoo.predict_trimap("luma_segmenter", image)
    chained = mattezoo.predict("luma_fill", image, trimap=made)
    np.testing.assert_array_equal(chained, mattezoo.predict("luma_fill", image, made.copy()))
    assert (chained[made == 0] == 0).all() and (chained[made == 255] == 1).all()
    unknown = made == 128
    np.testing.assert_allclose(chained[unknown], luma_of(image)[unknown], atol=1e-5)


def test_methods_that_make_no_trimap_are_refused_with_the_ones_that_do():
    with pytest.raises(InputError, match=r"'tiny_net' does not make trimaps; methods that do: .*luma_segmenter"):
        mattezoo.predict_trimap("tiny_net", gradient_image())
    providers = mattezoo.inference.trimap_providers()
    assert {"luma_segmenter", "p3m_net", "basic", "gfm"} <= set(providers) and "tiny_net" not in providers


def test_cli_trimap_from_writes_mattes_and_trimaps(tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    for i in range(2):
        write_png(images / f"p{i}.png", np.roll(gradient_image(), 7 * i, axis=1))
    out = tmp_path / "out"
    assert main(["predict", str(images), "--method", "luma_fill", "--trimap-from", "luma_segmenter", "--save-trimap", "--out", str(out)]) == 0
    for i in range(2):
        image = np.roll(gradient_image(), 7 * i, axis=1)
        trimap = read_gray(out / f"p{i}_trimap.png")
        np.testing.assert_array_equal(trimap, mattezoo.predict_trimap("luma_segmenter", image))
        expected = mattezoo.predict("luma_fill", image, trimap)
        np.testing.assert_allclose(read_matte(out / f"p{i}.png"), expected, atol=0.5 / 255 + 1e-6)


def test_cli_save_trimap_of_a_trimap_free_method(tmp_path):
    write_png(tmp_path / "a.png", gradient_image())
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "a.png"), "--method", "luma_segmenter", "--save-trimap", "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_gray(out / "a_trimap.png"), mattezoo.predict_trimap("luma_segmenter", gradient_image()))


@pytest.mark.parametrize("extra, message", [
    (["--method", "luma_fill", "--trimap-from", "tiny_net"], "'tiny_net' does not make trimaps; methods that do:"),
    (["--method", "luma_fill", "--trimap-from", "luma_segmentr"], "luma_segmenter"),
    (["--method", "luma_fill", "--trimap-from", "luma_segmenter", "--trimap", "TRIMAP"], "--trimap and --trimap-from both given"),
    (["--method", "tiny_net", "--trimap-from", "luma_segmenter"], "'tiny_net' is trimap-free and takes no trimap"),
    (["--method", "luma_fill"], "pass --trimap FILE_OR_FOLDER, or --trimap-from METHOD to make trimaps with one of: "),
    (["--method", "tiny_net", "--save-trimap"], "'tiny_net' makes no trimap"),
    (["--method", "luma_fill", "--trimap", "TRIMAP", "--trimap-checkpoint", "x.pth"], "--trimap-checkpoint needs --trimap-from"),
])
def test_cli_trimap_errors_name_the_problem(tmp_path, capsys, extra, message):
    write_png(tmp_path / "a.png", gradient_image())
    write_png(tmp_path / "t.png", thresholded(gradient_image()))
    extra = [str(tmp_path / "t.png") if a == "TRIMAP" else a for a in extra]
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


class NoTrimapMaker(torch.nn.Module):
    def forward(self, image):
        return image[:, :1]


class HalfwayTrimap(NoTrimapMaker):
    def infer_trimap(self, image):
        return image[:, :1] * 0 + 0.25


@pytest.mark.parametrize("factory, message", [("NoTrimapMaker", "has no infer_trimap"), ("HalfwayTrimap", "values other than 0, 0.5 and 1")])
def test_conformance_checks_trimap_makers(factory, message):
    spec = MethodSpec(name="bad_maker", family="trimap-free", factory=f"test_trimap_chaining:{factory}",
                      summary="s", citation="c", provides_trimap=True)
    with registered_plugin(ToyPlugin(spec), "broken"):
        with pytest.raises((AssertionError, mattezoo.MattezooError), match=message):
            run_conformance("bad_maker", backward=False)


def test_conformance_runs_the_trimap_check():
    assert "makes-trimap" in run_conformance("luma_segmenter").checks
