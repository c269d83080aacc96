"""SyntheticP3M: determinism, exact compositing, twins from the real face blur, hair alpha, identities."""

from __future__ import annotations

import numpy as np
import pytest

from mattezoo.data import SyntheticP3M
from mattezoo.data.synthetic.backgrounds import PROCEDURAL, available_photos, make_background, photo, procedural
from mattezoo.data.synthetic.canvas import SHIFT, Canvas
from mattezoo.data.synthetic.face import HeadPose, landmarks_3d
from mattezoo.data.synthetic.hair import draw_cap, draw_strands, make_strands
from mattezoo.data.synthetic.identity import EYE_LINE, make_identity
from mattezoo.errors import InputError

SIZE = 96


@pytest.fixture(scope="module")
def samples():
    ds = SyntheticP3M("train", n=16, size=SIZE, seed=5)
    return [ds[i] for i in range(len(ds))]


def test_same_seed_same_pixels():
    a, b = SyntheticP3M("P3M-500-P", n=3, size=SIZE, seed=1), SyntheticP3M("P3M-500-P", n=3, size=SIZE, seed=1)
    later = b[2]  # order of access must not matter
    first = a[2]
    for field in ("normal", "blurred", "alpha", "trimap", "fg", "bg", "facemask"):
        np.testing.assert_array_equal(getattr(first, field), getattr(later, field))
    assert first.name == later.name and first.identity == later.identity
    other = SyntheticP3M("P3M-500-P", n=3, size=SIZE, seed=2)[2]
    assert not np.array_equal(first.normal, other.normal)


def test_arrays_and_types(samples):
    s = samples[0]
    assert s.normal.shape == s.blurred.shape == s.fg.shape == s.bg.shape == (SIZE, SIZE, 3)
    assert s.normal.dtype == s.blurred.dtype == s.fg.dtype == s.bg.dtype == np.uint8
    assert s.alpha.dtype == np.float32 and s.alpha.shape == (SIZE, SIZE)
    assert s.trimap.dtype == np.uint8 and set(np.unique(s.trimap)) <= {0, 128, 255}
    assert s.facemask.dtype == np.uint8 and set(np.unique(s.facemask)) <= {0, 255}
    assert s.primary == "blurred" and s.image is s.blurred
    np.testing.assert_array_equal(np.round(s.alpha * 255) / 255, s.alpha)  # quantised like the PNG
    rect = SyntheticP3M("P3M-500-NP", n=1, size=(80, 64))[0]
    assert rect.normal.shape == (80, 64, 3) and rect.primary == "normal"


def test_composite_is_alpha_fg_plus_one_minus_alpha_bg(samples):
    for s in samples:
        a = s.alpha[..., None].astype(np.float64)
        expected = a * s.fg + (1 - a) * s.bg
        assert np.abs(s.normal - expected).max() <= 0.5 + 1e-6
        np.testing.assert_array_equal(s.normal[s.alpha == 0], s.bg[s.alpha == 0])
        np.testing.assert_array_equal(s.normal[s.alpha == 1], s.fg[s.alpha == 1])
        assert (s.alpha == 0).any() and (s.alpha == 1).any()


def test_trimap_agrees_with_alpha(samples):
    for s in samples:
        assert (s.alpha[s.trimap == 255] == 1).all() and (s.alpha[s.trimap == 0] == 0).all()
        assert (s.trimap[(s.alpha > 0) & (s.alpha < 1)] == 128).all()


def test_twin_differs_only_inside_the_face_mask(samples):
    blurred_faces = 0
    for s in samples:
        changed = (s.blurred != s.normal).any(axis=-1)
        mask = s.facemask > 0
        assert not (changed & ~mask).any(), s.name
        assert not (mask & (s.alpha < 1)).any(), "the face blur must keep every transition pixel"
        if s.meta["view"] == "back":
            assert s.meta["landmarks"] is None and s.meta["faces"] == 0
            np.testing.assert_array_equal(s.blurred, s.normal)
            assert not mask.any()
        else:
            assert s.meta["faces"] == 1 and s.meta["landmarks"].shape == (68, 2)
            blurred_faces += int(changed.sum() > 10)
    assert blurred_faces >= len(samples) // 2


def test_landmarks_sit_on_the_drawn_face(samples):
    checked = 0
    for s in samples:
        lm = s.meta["landmarks"]
        if lm is None or s.meta["view"] != "frontal":
            continue
        inner = lm[[30, 33, 36, 39, 42, 45, 51, 57, 62, 66]]  # nose, eye corners, lips
        xs, ys = np.round(inner[:, 0]).astype(int), np.round(inner[:, 1]).astype(int)
        ok = (xs >= 0) & (xs < SIZE) & (ys >= 0) & (ys < SIZE)
        assert (s.alpha[ys[ok], xs[ok]] == 1).all()
        assert (s.facemask[ys[ok], xs[ok]] > 0).mean() > 0.8
        checked += 1
    assert checked >= 2


def _porter_duff(P, A, roi, alpha, colour):
    """Reference "over" in float64 on interleaved H×W×3 colour: P = c·a + P·(1-a), A = a + A·(1-a)."""
    y0, y1, x0, x1 = roi
    a = alpha.astype(np.float64)
    c = np.asarray(colour, dtype=np.float64)
    c = np.moveaxis(np.broadcast_to(c.reshape(3, 1, 1) if c.ndim == 1 else c, (3, *a.shape)), 0, -1)  # planar -> h×w×3
    P[y0:y1, x0:x1] = c * a[..., None] + P[y0:y1, x0:x1] * (1 - a[..., None])
    A[y0:y1, x0:x1] = a + A[y0:y1, x0:x1] * (1 - a)


def test_canvas_parts_compose_like_porter_duff_over():
    rng = np.random.default_rng(7)
    h, w = 40, 50
    canvas = Canvas(h, w)
    P, A = np.zeros((h, w, 3)), np.zeros((h, w))
    for k in range(12):
        y0, x0 = rng.integers(0, 30), rng.integers(0, 40)
        roi = (int(y0), int(y0 + rng.integers(1, 11)), int(x0), int(x0 + rng.integers(1, 11)))
        shape = (roi[1] - roi[0], roi[3] - roi[2])
        alpha = rng.choice([0.0, 1.0, rng.random()], size=shape).astype(np.float32)
        if k % 3 == 0:  # a constant colour
            colour = rng.random(3, dtype=np.float32)
            canvas.over(roi, alpha, colour)
        elif k % 3 == 1:  # a planar colour field
            colour = rng.random((3, *shape), dtype=np.float32)
            canvas.over(roi, alpha, colour)
        else:  # the sparse form: covered pixels only, premultiplied
            colour = rng.random((3, *shape), dtype=np.float32)
            flat = np.flatnonzero(alpha)
            canvas.over_sparse(roi, flat, alpha.reshape(-1)[flat], colour.reshape(3, -1)[:, flat] * alpha.reshape(-1)[flat])
        _porter_duff(P, A, roi, alpha, colour)
    np.testing.assert_allclose(canvas.A, A, atol=2e-6)
    np.testing.assert_allclose(np.moveaxis(canvas.P, 0, -1), P, atol=2e-6)

    alpha, fg = canvas.finish()
    np.testing.assert_array_equal(alpha, (np.round(A * 255) / 255).astype(np.float32))
    F = np.divide(P, A[..., None], out=np.zeros_like(P), where=A[..., None] > 0) * 255
    assert np.abs(fg - F).max() <= 0.5 + 1e-3 and not fg[A == 0].any()
    bg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image = canvas.composite(alpha, fg, bg)
    a = alpha[..., None].astype(np.float64)
    assert np.abs(image - (a * fg + (1 - a) * bg)).max() <= 0.5
    assert Canvas(8, 8).finish()[0].max() == 0  # nothing drawn: empty matte


def test_strands_keep_exact_fixed_point_copies_and_bounds():
    ident = next(make_identity(k) for k in range(100) if make_identity(k).hair.kind == "long")
    pose = HeadPose(cx=100.0, cy=80.0, scale=30.0, yaw=0.4, roll=0.1)
    strands = make_strands(ident, pose, np.random.default_rng(3), pose.project(landmarks_3d(ident)[0])[0])
    pts = strands.points
    n, k = len(strands.front), strands.ks
    assert pts.shape == strands.fixed.shape and pts.shape[0] == n
    np.testing.assert_array_equal(strands.fixed, np.rint(pts.astype(np.float64) * (1 << SHIFT)).astype(np.int32))
    assert strands.short.any() and not strands.short.all()
    for i in range(n):
        drawn = pts[i, :k] if strands.short[i] else pts[i]
        np.testing.assert_array_equal(strands.lo[i], drawn.min(axis=0))
        np.testing.assert_array_equal(strands.hi[i], drawn.max(axis=0))
    assert set(np.unique(strands.group)) <= {0, 1, 2} and (strands.group[strands.flyaway] == 2).all()


@pytest.mark.parametrize("kind", PROCEDURAL)
def test_procedural_backgrounds(kind):
    a = procedural(kind, 40, 56, np.random.default_rng(1))
    b = procedural(kind, 40, 56, np.random.default_rng(1))
    assert a.shape == (40, 56, 3) and a.dtype == np.float32 and a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.005


def test_photo_backgrounds_and_the_picker():
    names = available_photos()
    if not names:
        pytest.skip("scikit-image's photos are not installed")
    for name in names:
        for size in ((48, 64), (300, 200)):
            img = photo(name, *size, np.random.default_rng(2))
            assert img.shape == (*size, 3) and img.dtype == np.uint8 and img.std() > 2
            np.testing.assert_array_equal(img, photo(name, *size, np.random.default_rng(2)))
    seen = set()
    for seed in range(40):
        bg, name = make_background(64, 48, np.random.default_rng(seed))
        assert bg.shape == (64, 48, 3) and bg.dtype == np.uint8
        seen.add(name)
    assert seen & set(names) and seen & set(PROCEDURAL)


def test_hair_strands_give_fractional_alpha():
    ident = next(make_identity(k) for k in range(100) if make_identity(k).hair.kind == "long")
    pose = HeadPose(cx=96.0, cy=70.0, scale=40.0, yaw=0.0, roll=0.0)
    canvas = Canvas(256, 192)
    rng = np.random.default_rng(0)
    strands = make_strands(ident, pose, rng, None)
    draw_strands(canvas, ident, strands, front=False, scale=pose.scale)
    draw_cap(canvas, ident, pose, rng)
    draw_strands(canvas, ident, strands, front=True, scale=pose.scale)
    alpha, _ = canvas.finish()
    covered = alpha > 0
    fractional = covered & (alpha < 1)
    assert fractional.sum() > 0.2 * covered.sum()
    assert len(np.unique(alpha[fractional])) > 100
    assert (alpha[int(pose.cy + 2 * pose.scale) :] > 0).sum() > 200  # long hair falls below the head


def test_portraits_have_much_more_soft_alpha_than_an_antialiased_outline():
    ds = SyntheticP3M("P3M-500-NP", n=6, size=256, seed=3)
    ratios = []
    for i in range(len(ds)):
        p = ds.render(i)
        top = int(p.pose.cy + p.pose.scale * (EYE_LINE - 0.2))
        head = p.alpha[: max(top, 0)]
        soft = ((head > 0.02) & (head < 0.98)).sum()
        ratios.append(soft / (2 * np.pi * p.pose.scale * 1.2))  # skull outline length in px
    assert np.mean(ratios) > 1.3, ratios


def test_identities_are_disjoint_between_train_and_np():
    train = SyntheticP3M("train", n=40, seed=0)
    np_split = SyntheticP3M("P3M-500-NP", n=20, seed=0)
    p_split = SyntheticP3M("P3M-500-P", n=20, seed=0)
    assert train.identity_name(0) == train.identity_name(3) != train.identity_name(4)
    t_ids, n_ids, p_ids = train.identities(), np_split.identities(), p_split.identities()
    assert len(t_ids) == 10 and len(n_ids) == 20
    assert not set(t_ids) & set(n_ids) and not set(t_ids) & set(p_ids) and not set(n_ids) & set(p_ids)
    train_vectors = np.stack([i.vector() for i in t_ids.values()])
    for ident in n_ids.values():
        assert not np.isclose(train_vectors, ident.vector()[None], atol=1e-9).all(axis=1).any()


def test_bad_arguments():
    with pytest.raises(InputError, match="unknown split"):
        SyntheticP3M("val")
    with pytest.raises(InputError, match="n must be"):
        SyntheticP3M(n=-1)
    with pytest.raises(InputError, match="at least 32"):
        SyntheticP3M(size=16)
    with pytest.raises(InputError, match="size must be"):
        SyntheticP3M(size="big")
    with pytest.raises(IndexError):
        SyntheticP3M(n=2)[2]
    s = SyntheticP3M("P3M-500-NP", n=1, size=64)[0]
    with pytest.raises(InputError, match="unknown image kind 'X'"):
        s.view("X")
    s.blurred = None
    with pytest.raises(InputError, match="has no blurred image"):
        s.view("B")
