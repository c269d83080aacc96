"""Training batches are a pure function of the step, split evenly over ranks, with consistent fg/bg."""

import numpy as np
import pytest
import torch

from mattezoo.data import Sample
from mattezoo.errors import InputError
from mattezoo.train import TrainingBatches
from mattezoo.train.batches import default_crop_sizes, kernel_range_for


def _samples(n=5, size=48):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        alpha = np.zeros((size, size), np.float32)
        alpha[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
        alpha[size // 4 - 2 : size // 4, :] = 0.5
        normal = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        blurred = normal.copy()
        blurred[size // 2 :, size // 3 : size // 2] = 7  # the "face" the blur changed
        fg = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        bg = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        out.append(Sample(name=f"s{i}", alpha=alpha, normal=normal, blurred=blurred, fg=fg, bg=bg))
    return out


NEEDS = ("image", "alpha", "trimap", "fg", "bg")


def test_batch_is_a_pure_function_of_the_step():
    a = TrainingBatches(_samples(), "blurred", batch=4, size=32, seed=5, needs=NEEDS)
    b = TrainingBatches(_samples(), "B", batch=4, size=32, seed=5, needs=NEEDS)
    later = b.batch_at(3)  # asked out of order, from a fresh object
    for step in (0, 3):
        x = a.batch_at(step)
        y = later if step == 3 else b.batch_at(0)
        assert all(torch.equal(x[k], y[k]) for k in NEEDS)
    assert not torch.equal(a.batch_at(1)["image"], a.batch_at(2)["image"])
    c = TrainingBatches(_samples(), "blurred", batch=4, size=32, seed=6, needs=NEEDS)
    assert not torch.equal(a.batch_at(0)["image"], c.batch_at(0)["image"])


def test_epochs_visit_every_sample_once():
    b = TrainingBatches(_samples(7), "normal", batch=2, size=32, seed=1)
    for epoch in range(3):
        seen = sorted(b.index_at(epoch * 7 + i) for i in range(7))
        assert seen == list(range(7))


def test_ranks_split_the_global_batch():
    whole = TrainingBatches(_samples(), "normal", batch=4, size=32, seed=2, needs=NEEDS).batch_at(2)
    parts = [TrainingBatches(_samples(), "normal", batch=4, size=32, seed=2, needs=NEEDS, rank=r, world=2).batch_at(2) for r in range(2)]
    for k in NEEDS:
        assert torch.equal(torch.cat([p[k] for p in parts]), whole[k])
    with pytest.raises(InputError, match="cannot be split evenly over 3 processes"):
        TrainingBatches(_samples(), "normal", batch=4, size=32, world=3)


def test_tensor_formats():
    batch = TrainingBatches(_samples(), "normal", batch=3, size=40, seed=0, needs=NEEDS).batch_at(0)
    assert batch["image"].shape == (3, 3, 40, 40) and batch["image"].dtype == torch.float32
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert batch["alpha"].shape == (3, 1, 40, 40)
    assert set(torch.unique(batch["trimap"]).tolist()) <= {0.0, 0.5, 1.0}
    # Known trimap regions agree with alpha.
    assert torch.all(batch["alpha"][batch["trimap"] == 1.0] == 1.0)
    assert torch.all(batch["alpha"][batch["trimap"] == 0.0] == 0.0)


def test_blurred_foreground_has_the_blurred_face():
    b = TrainingBatches(_samples(1), "blurred", batch=1, size=48, seed=0, needs=NEEDS, crop_sizes=(48,))
    fg, _bg = b._fg_bg(b.samples[0], b.samples[0].blurred, b.samples[0].alpha)
    s = b.samples[0]
    changed = np.any(s.blurred != s.normal, axis=-1)
    assert np.array_equal(fg[changed], s.blurred[changed])
    assert np.array_equal(fg[~changed], s.fg[~changed])
    n = TrainingBatches(_samples(1), "normal", batch=1, size=48, seed=0, needs=NEEDS)
    assert np.array_equal(n._fg_bg(s, s.normal, s.alpha)[0], s.fg)


def test_missing_fg_bg_come_from_the_image():
    s = _samples(1)[0]
    s.fg = s.bg = None
    b = TrainingBatches([s], "normal", batch=1, size=48, needs=NEEDS)
    fg, bg = b._fg_bg(s, s.normal, s.alpha)
    np.testing.assert_array_equal(fg, (s.normal * s.alpha[..., None]).astype(np.uint8))
    np.testing.assert_array_equal(bg, (s.normal * (1 - s.alpha[..., None])).astype(np.uint8))


def test_sizes_scale_with_the_crop():
    assert default_crop_sizes(512) == (512, 768, 1024)
    assert default_crop_sizes(128) == (128, 192, 256)
    assert kernel_range_for(1024) == (15, 30)
    assert kernel_range_for(128) == (3, 4)


def test_bad_input():
    with pytest.raises(InputError, match="empty"):
        TrainingBatches([], "normal", batch=1, size=8)
    with pytest.raises(InputError, match="valid views"):
        TrainingBatches(_samples(1), "left", batch=1, size=8)
    only_blurred = _samples(1)
    only_blurred[0].normal = None
    with pytest.raises(InputError, match="has no normal image"):
        TrainingBatches(only_blurred, "normal", batch=1, size=8).batch_at(0)
