"""create_method and predict: the happy paths and every kind of bad input."""

import numpy as np
import pytest
import torch

import mattezoo
from mattezoo.errors import InputError, InvalidOptionError, UnknownMethodError
from mattezoo.images import write_png
from mattezoo.testing import registered_plugin, sample_inputs
from toy_plugins import ToyPlugin


@pytest.fixture(autouse=True)
def toys():
    with registered_plugin(ToyPlugin(), "toys"):
        yield


def test_predict_by_name_object_and_path(tmp_path):
    image, trimap, _ = sample_inputs(30, 21)
    by_name = mattezoo.predict("tiny_net", image)
    model = mattezoo.create_method("tiny_net")
    assert isinstance(model, torch.nn.Module) and not model.training
    by_object = mattezoo.predict(model, image)
    write_png(tmp_path / "img.png", image)
    by_path = mattezoo.predict(model, tmp_path / "img.png")
    assert by_name.shape == (30, 21) and by_name.dtype == np.float32
    np.testing.assert_array_equal(by_name, by_object)
    np.testing.assert_array_equal(by_name, by_path)


def test_padding_to_input_multiple_does_not_change_the_valid_region():
    # tiny_net is fully convolutional with a 3x3 receptive field, so away from
    # the bottom/right border the padded run must equal the unpadded one.
    image, _, _ = sample_inputs(21, 19)
    model = mattezoo.create_method("tiny_net")
    alpha = mattezoo.predict(model, image)
    with torch.no_grad():
        direct = model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)[0, 0].numpy()
    np.testing.assert_allclose(alpha[:-1, :-1], direct[:-1, :-1], atol=1e-6)


def test_trimap_method_uses_trimap_encoding():
    image, trimap, _ = sample_inputs(16, 16)
    alpha = mattezoo.predict("luma_fill", image, trimap)
    assert (alpha[trimap == 255] == 1).all() and (alpha[trimap == 0] == 0).all()
    unknown = trimap == 128
    luma = (0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2]) / 255
    np.testing.assert_allclose(alpha[unknown], luma[unknown], atol=1e-5)


def test_options_are_validated():
    assert mattezoo.create_method("tiny_net", width=2).body[0].out_channels == 2
    with pytest.raises(InvalidOptionError, match=r"no option 'widht'.*Did you mean 'width'.*Valid options: batchnorm, device, pretrained, width"):
        mattezoo.create_method("tiny_net", widht=2)
    with pytest.raises(InvalidOptionError, match="width must be >= 1"):
        mattezoo.create_method("tiny_net", width=0)
    with pytest.raises(InvalidOptionError, match="invalid device 'gpu0'"):
        mattezoo.create_method("tiny_net", device="gpu0")
    with pytest.raises(InvalidOptionError, match="option 'pretrained' does not apply"):
        mattezoo.create_method("blue_keyer", pretrained="x.pth")


def test_unknown_method_name():
    with pytest.raises(UnknownMethodError, match="Did you mean 'tiny_net'"):
        mattezoo.predict("tiny_nett", sample_inputs(8, 8)[0])


BAD_IMAGES = {
    "gray": (np.zeros((8, 8), np.uint8), "shape H×W×3"),
    "rgba": (np.zeros((8, 8, 4), np.uint8), "shape H×W×3"),
    "float": (np.zeros((8, 8, 3), np.float32), "must be uint8"),
    "list": ([[0, 0, 0]], "numpy array"),
    "empty": (np.zeros((0, 8, 3), np.uint8), "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_arrays(case):
    image, message = BAD_IMAGES[case]
    with pytest.raises(InputError, match=message):
        mattezoo.predict("tiny_net", image)


def test_bad_image_files(tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="not a readable image"):
        mattezoo.predict("tiny_net", corrupt)
    with pytest.raises(InputError, match="no such file"):
        mattezoo.predict("tiny_net", tmp_path / "absent.png")
    gray = tmp_path / "gray.png"
    write_png(gray, np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="grayscale image; an RGB image"):
        mattezoo.predict("tiny_net", gray)
    rgba = tmp_path / "rgba.png"
    write_png(rgba, np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(InputError, match="RGBA image"):
        mattezoo.predict("tiny_net", rgba)


def test_bad_trimaps(tmp_path):
    image, trimap, _ = sample_inputs(16, 16)
    odd = trimap.copy()
    odd[0, :3] = 127
    with pytest.raises(InputError, match=r"values other than 0 \(background\), 128 \(unknown\) and 255 \(foreground\): 127 \(3 px\)"):
        mattezoo.predict("luma_fill", image, odd)
    with pytest.raises(InputError, match="trimap is 15×16 but the image is 16×16"):
        mattezoo.predict("luma_fill", image, trimap[1:])
    with pytest.raises(InputError, match="needs a trimap"):
        mattezoo.predict("luma_fill", image)
    with pytest.raises(InputError, match="trimap-free and takes no trimap"):
        mattezoo.predict("tiny_net", image, trimap)
    with pytest.raises(InputError, match="must be uint8"):
        mattezoo.predict("luma_fill", image, trimap.astype(np.float32))
    path = tmp_path / "trimap.png"
    write_png(path, trimap)
    np.testing.assert_array_equal(mattezoo.predict("luma_fill", image, path), mattezoo.predict("luma_fill", image, trimap))


def test_tensor_level_checks():
    model = mattezoo.create_method("tiny_net")
    image = torch.rand(1, 3, 8, 8)
    image[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        mattezoo.run_method(model, image)
    with pytest.raises(InputError, match=r"\[B,3,H,W\]"):
        mattezoo.run_method(model, torch.rand(3, 8, 8))
    with pytest.raises(InputError, match="not a mattezoo method"):
        mattezoo.run_method(torch.nn.Identity(), torch.rand(1, 3, 8, 8))


def test_broken_method_output_is_reported():
    model = mattezoo.create_method("tiny_net")
    model.forward = lambda image: torch.full_like(image[:, :1], float("nan"))
    with pytest.raises(mattezoo.MattezooError, match="NaN or infinite alpha"):
        mattezoo.predict(model, sample_inputs(8, 8)[0])
    model.forward = lambda image: image
    with pytest.raises(mattezoo.MattezooError, match="expected a tensor of shape"):
        mattezoo.predict(model, sample_inputs(8, 8)[0])


# --- mattezoo predict --strategy -----------------------------------------------------


def _capture_created_methods(monkeypatch) -> list:
    """Make ``mattezoo predict`` record the method objects (and options) it creates."""
    from mattezoo.cli import predict_cmd

    created = []

    def recording(name, **options):
        method = mattezoo.create_method(name, **options)
        created.append((method, options))
        return method

    monkeypatch.setattr(predict_cmd, "create_method", recording)
    return created


def test_predict_strategy_reaches_p3m_net(tmp_path, monkeypatch):
    from mattezoo.cli import main
    from mattezoo.images import read_matte

    created = _capture_created_methods(monkeypatch)
    image = sample_inputs(70, 45, seed=3)[0]
    write_png(tmp_path / "portrait.png", image)
    image_t = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    written = {}
    for strategy in ("hybrid", "resize"):
        out = tmp_path / strategy
        argv = ["predict", str(tmp_path / "portrait.png"), "--method", "p3m_net", "--strategy", strategy, "--out", str(out)]
        assert main(argv + ["-o", "max_side=64"]) == 0
        method, options = created[-1]
        assert options["strategy"] == strategy and method.strategy == strategy
        written[strategy] = read_matte(out / "portrait.png")
        # The file is the matte of the strategy asked for, not of the other one.
        own = method.infer_details(image_t, strategy=strategy).alpha[0, 0].numpy()
        other = method.infer_details(image_t, strategy="resize" if strategy == "hybrid" else "hybrid").alpha[0, 0].numpy()
        assert np.abs(own - other).max() > 2 / 255
        np.testing.assert_allclose(written[strategy], own, atol=0.5 / 255 + 1e-6)


def test_predict_strategy_errors(tmp_path, capsys):
    from mattezoo.cli import main

    write_png(tmp_path / "a.png", sample_inputs(16, 16)[0])
    base = ["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]
    assert main(base + ["--method", "p3m_net", "--strategy", "tiled"]) == 2
    assert "unknown P3M-Net test strategy 'tiled'; valid strategies: hybrid, resize" in capsys.readouterr().err
    assert main(base + ["--method", "tiny_net", "--strategy", "hybrid"]) == 2
    err = capsys.readouterr().err
    assert "method 'tiny_net' has no test-time strategies" in err
    listed = err.split("methods with strategies: ")[1].strip().split(", ")
    assert {"basic", "p3m_net"} <= set(listed) and "tiny_net" not in listed and listed == sorted(listed)
    assert main(base + ["--method", "basic", "--strategy", "hybrid", "-o", "strategy=resize"]) == 2
    assert "both given" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_predict_warns_when_a_learned_method_has_no_weights(tmp_path, capsys):
    from mattezoo.cli import main

    write_png(tmp_path / "a.png", sample_inputs(16, 16)[0])
    argv = ["predict", str(tmp_path / "a.png"), "--method", "tiny_net"]
    assert main(argv + ["--out", str(tmp_path / "random")]) == 0
    err = capsys.readouterr().err
    assert "'tiny_net' has no trained weights (no --checkpoint given)" in err and "random initialisation" in err
    # With weights, no warning; a classical method needs none.
    checkpoint = tmp_path / "tiny.pth"
    torch.save(mattezoo.create_method("tiny_net").state_dict(), checkpoint)
    assert main(argv + ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "trained")]) == 0
    assert "no trained weights" not in capsys.readouterr().err
    trimap = tmp_path / "t.png"
    write_png(trimap, np.repeat(np.array([0, 128, 255], np.uint8), [5, 6, 5])[None].repeat(16, 0))
    assert main(["predict", str(tmp_path / "a.png"), "--method", "closed_form", "--trimap", str(trimap),
                 "--out", str(tmp_path / "cf")]) == 0
    assert "no trained weights" not in capsys.readouterr().err
