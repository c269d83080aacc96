"""information_flow: LLE weights and each flow against slow per-pixel
references, the assembled system, error budgets on photo composites next to
closed_form, trimap edge cases and the plugin contract."""

import numpy as np
import pytest
import scipy.sparse

import mattezoo
from composites import make_composite, sad
from mattezoo.classical import cf_laplacian, split_trimap
from mattezoo_methods import information_flow as ifm
from mattezoo_methods.closed_form import estimate_alpha_closed_form
from trimap_cases import check_trimap_edge_cases


def brute_neighbours(features, p, pool, k):
    """The ``k`` pixels of ``pool`` nearest to pixel ``p`` (itself excluded) by a full sort."""
    pool = np.asarray([q for q in pool if q != p])
    distance = ((features[pool] - features[p]) ** 2).sum(axis=1)
    return pool[np.argsort(distance, kind="stable")[:k]]


def kkt_weights(point, neighbours, conditioner=ifm.LLE_CONDITIONER):
    """min ‖p − Nᵀw‖² + c‖w‖² s.t. Σw = 1, from its KKT system (one pixel at a time)."""
    k = len(neighbours)
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = neighbours @ neighbours.T + conditioner * np.eye(k)
    kkt[:k, k] = kkt[k, :k] = 1.0
    return np.linalg.solve(kkt, np.append(neighbours @ point, 1.0))[:k]


def features_of(image, xy_weight):
    h, w = image.shape[:2]
    y, x = np.mgrid[1 : h + 1, 1 : w + 1]
    return np.column_stack([image.reshape(-1, 3), xy_weight * x.ravel() / w, xy_weight * y.ravel() / h])


def tiny_case(h=9, w=11, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform(size=(h, w, 3))
    unknown = np.zeros((h, w), bool)
    unknown[2:7, 3:9] = True
    return image, unknown


def test_lle_weights_reconstruct_each_point():
    rng = np.random.default_rng(1)
    neighbours = rng.uniform(size=(300, 20, 3))
    # Points inside the neighbours' convex hull: exactly representable.
    mix = rng.dirichlet(np.ones(20), size=300)
    points = np.einsum("mk,mkd->md", mix, neighbours)
    weights = ifm.lle_weights(points, neighbours)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("mk,mkd->md", weights, neighbours), points, atol=1e-8)
    # The ridge picks the smallest weights that do it: the minimum-norm affine solution.
    for m in range(0, 300, 37):
        a = np.vstack([neighbours[m].T, np.ones(20)])
        min_norm = np.linalg.lstsq(a, np.append(points[m], 1.0), rcond=None)[0]
        np.testing.assert_allclose(weights[m], min_norm, atol=1e-4)
    # Few neighbours (K <= D): the best affine fit, from the KKT system.
    np.testing.assert_allclose(ifm.lle_weights(points[:5], neighbours[:5, :3]),
                               [kkt_weights(p, n) for p, n in zip(points[:5], neighbours[:5, :3])], atol=1e-9)


def test_nonlocal_neighbors_exclude_self_and_match_brute_force():
    image, unknown = tiny_case()
    features = ifm.pixel_features(image, 1.0)
    np.testing.assert_allclose(features, features_of(image, 1.0))
    queries = np.flatnonzero(unknown)
    found = ifm.nonlocal_neighbors(features, 6, queries, np.arange(unknown.size))
    for p, row in zip(queries, found):
        assert p not in row
        np.testing.assert_array_equal(row, brute_neighbours(features, p, range(unknown.size), 6))
    pool = np.flatnonzero(~unknown)  # disjoint pool: no self to remove
    found = ifm.nonlocal_neighbors(features, 4, queries, pool)
    for p, row in zip(queries, found):
        np.testing.assert_array_equal(row, brute_neighbours(features, p, pool, 4))


def test_color_mixture_flow_matches_per_pixel_reference():
    image, unknown = tiny_case()
    k = 6
    rows = ifm.color_mixture_rows(image, unknown, k=k, xy_weight=1.0)
    features = features_of(image, 1.0)
    n = unknown.size
    energy = np.zeros((n, n))
    for p in np.flatnonzero(unknown):
        neighbours = brute_neighbours(features, p, range(n), k)
        w = kkt_weights(image.reshape(-1, 3)[p], image.reshape(-1, 3)[neighbours])
        row = np.zeros(n)
        row[p] += 1.0
        row[neighbours] -= w
        energy += np.outer(row, row)
    np.testing.assert_allclose((rows.T @ rows).toarray(), energy, atol=1e-5)
    np.testing.assert_allclose(rows.sum(axis=1), 0.0, atol=1e-10)  # constant alpha flows nowhere


def test_intra_unknown_flow_matches_per_pixel_reference():
    image, unknown = tiny_case(seed=2)
    k, xy = 5, 0.05
    laplacian = ifm.intra_unknown_laplacian(image, unknown, k=k, xy_weight=xy).toarray()
    pixels = np.flatnonzero(unknown)
    index = {p: i for i, p in enumerate(pixels)}
    kernel_features = features_of(image, xy / 1e4)
    affinity = np.zeros((len(pixels), len(pixels)))
    for p in pixels:
        neighbours = np.concatenate([brute_neighbours(features_of(image, xy), p, pixels, k),
                                     brute_neighbours(features_of(image, xy / 100), p, pixels, 1)])
        for q in neighbours:  # a pixel listed by both searches counts twice
            affinity[index[p], index[q]] += max(1 - np.abs(kernel_features[p] - kernel_features[q]).sum() / 5, 0)
    affinity = (affinity + affinity.T) / 2
    np.testing.assert_allclose(laplacian, np.diag(affinity.sum(axis=1)) - affinity, atol=1e-12)


def test_known_to_unknown_flow_recovers_exact_mixtures():
    # Flat foreground and background colours, the unknown band a linear blend:
    # the foreground share of the LLE weights is the true alpha.
    h, w = 12, 16
    truth = np.clip(np.linspace(-0.5, 1.5, w), 0, 1)[None, :].repeat(h, 0)
    f, b = np.array([0.9, 0.6, 0.2]), np.array([0.1, 0.3, 0.7])
    image = truth[..., None] * f + (1 - truth[..., None]) * b
    fg, bg = truth == 1, truth == 0
    estimate, confidence = ifm.known_to_unknown_flow(image, fg, bg, k=7, xy_weight=10.0)
    np.testing.assert_allclose(estimate, truth, atol=1e-6)
    unknown = ~(fg | bg)
    expected = ((truth[..., None] * f - (1 - truth[..., None]) * b) ** 2).sum(axis=2) / 3
    np.testing.assert_allclose(confidence[unknown], expected[unknown], atol=1e-6)
    assert (confidence[~unknown] == 1).all()


def slow_edge_trimming(image, fg, bg, iterations=9, upper=9 / 256, lower=1 / 256):
    """Per-pixel version of the toolbox's label expansion, for comparison."""
    h, w = fg.shape
    label = np.where(fg, 1, np.where(bg, 0, -1))
    for i in range(1, iterations + 1):
        threshold = upper - i * (upper - lower) / iterations
        new = label.copy()
        for r in range(h):
            for c in range(w):
                if label[r, c] >= 0:
                    continue
                best = None
                # Column-major scan of the clipped window; strict < keeps the first of equal distances.
                for cc in range(max(c - i, 0), min(c + i, w - 1) + 1):
                    for rr in range(max(r - i, 0), min(r + i, h - 1) + 1):
                        if label[rr, cc] < 0 or np.linalg.norm(image[rr, cc] - image[r, c]) >= threshold:
                            continue
                        d = np.hypot(rr - r, cc - c)
                        if best is None or d < best[0]:
                            best = (d, label[rr, cc])
                if best is not None:
                    new[r, c] = best[1]
        label = new
    return label == 1, label == 0


def test_edge_trimming_matches_per_pixel_reference():
    rng = np.random.default_rng(3)
    h, w = 18, 22
    # A few flat colours plus faint noise, so some unknown pixels match known ones.
    palette = rng.uniform(size=(4, 3))
    image = palette[rng.integers(0, 4, size=(h, w))] + rng.uniform(-0.004, 0.004, size=(h, w, 3))
    image = np.clip(image, 0, 1)
    fg = np.zeros((h, w), bool)
    bg = np.zeros((h, w), bool)
    fg[:, :5], bg[:, -5:] = True, True
    fg[0, 10] = True
    ours = ifm.edge_trimming(image, fg, bg)
    reference = slow_edge_trimming(image, fg, bg)
    np.testing.assert_array_equal(ours[0], reference[0])
    np.testing.assert_array_equal(ours[1], reference[1])
    assert ours[0].sum() > fg.sum() and ours[1].sum() > bg.sum()  # it did label some pixels


def slow_patch_trimming(image, fg, bg, k=5):
    """Per-pixel Bhattacharyya comparison of 3×3 colour distributions (replicated border)."""
    h, w = fg.shape
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    mean, covariance = np.zeros((h, w, 3)), np.zeros((h, w, 3, 3))
    for r in range(h):
        for c in range(w):
            window = padded[r : r + 3, c : c + 3].reshape(9, 3)
            mean[r, c] = window.mean(axis=0)
            covariance[r, c] = np.cov(window.T, bias=True) + 1e-8 * np.eye(3)
    mean, covariance = mean.reshape(-1, 3), covariance.reshape(-1, 3, 3)

    def bhattacharyya(p, q):
        pooled = (covariance[p] + covariance[q]) / 2
        d = mean[q] - mean[p]
        return d @ np.linalg.inv(pooled) @ d / 8 + 0.5 * np.log(
            np.linalg.det(pooled) / np.sqrt(np.linalg.det(covariance[p]) * np.linalg.det(covariance[q])))

    new_fg, new_bg = fg.ravel().copy(), bg.ravel().copy()
    for p in np.flatnonzero(~(fg | bg).ravel()):
        d_fg = min(bhattacharyya(p, q) for q in brute_neighbours(mean, p, np.flatnonzero(fg), k))
        d_bg = min(bhattacharyya(p, q) for q in brute_neighbours(mean, p, np.flatnonzero(bg), k))
        if d_fg < 0.25:
            new_fg[p] |= d_bg > 0.9
        elif d_bg < 0.25:
            new_bg[p] |= d_fg > 0.9
    return new_fg.reshape(h, w), new_bg.reshape(h, w)


def test_patch_trimming_matches_per_pixel_reference():
    c = make_composite(24, 30, seed=1)
    regions = split_trimap(c.trimap, c.alpha.shape)
    ours = ifm.patch_trimming(c.image, regions.foreground, regions.background)
    reference = slow_patch_trimming(c.image, regions.foreground, regions.background)
    np.testing.assert_array_equal(ours[0], reference[0])
    np.testing.assert_array_equal(ours[1], reference[1])
    assert (ours[0] | ours[1]).sum() > (regions.foreground | regions.background).sum()


def test_patch_trimming_and_transparency_test():
    c = make_composite(96, 128, seed=1)
    regions = split_trimap(c.trimap, c.alpha.shape)
    fg, bg = ifm.patch_trimming(c.image, regions.foreground, regions.background)
    assert (fg >= regions.foreground).all() and (bg >= regions.background).all() and not (fg & bg).any()
    # What it labels is mostly opaque or clear in the true matte (measured: 92% and 95%).
    new_fg, new_bg = fg & regions.unknown, bg & regions.unknown
    assert new_fg.sum() > 20 and new_bg.sum() > 20
    assert (c.alpha[new_fg] > 0.9).mean() > 0.85 and (c.alpha[new_bg] < 0.1).mean() > 0.85
    # An opaque-edged composite is not "highly transparent"; an unknown band of a
    # colour found in neither known region is.
    assert not ifm.is_highly_transparent(c.image, regions.foreground, regions.background)
    odd = c.image.copy()
    odd[regions.unknown] = [1.0, 0.0, 1.0]
    assert ifm.is_highly_transparent(odd, regions.foreground, regions.background)


def test_system_is_symmetric_positive_definite_and_restricts_the_full_energy():
    c = make_composite(24, 30, seed=5)
    regions = split_trimap(c.trimap, c.alpha.shape)
    matrix, rhs = ifm.information_flow_system(c.image, regions, use_known_to_unknown=False)
    dense = matrix.toarray()
    np.testing.assert_allclose(dense, dense.T, atol=1e-10 * np.abs(dense).max())
    assert np.linalg.eigvalsh(dense).min() > 0
    # The whole-image quadratic energy, built densely; fixing the known
    # pixels leaves A = Q_UU and b = −Q_UK α_K.
    rows = ifm.color_mixture_rows(c.image, regions.unknown).toarray()
    unknown = regions.unknown.ravel()
    iu = np.zeros((unknown.size, unknown.size))
    iu[np.ix_(unknown, unknown)] = ifm.intra_unknown_laplacian(c.image, regions.unknown).toarray()
    energy = rows.T @ rows + cf_laplacian(c.image, epsilon=1e-6).toarray() / 9 + 0.01 * iu
    np.testing.assert_allclose(dense, energy[np.ix_(unknown, unknown)], atol=1e-8)
    np.testing.assert_allclose(rhs, -energy[np.ix_(unknown, ~unknown)] @ regions.known_alpha().ravel()[~unknown], atol=1e-8)
    # With the K-to-U flow the diagonal grows by σ_KU·H, still SPD.
    with_ku, _ = ifm.information_flow_system(c.image, regions, use_known_to_unknown=True)
    extra = (with_ku - matrix).toarray()
    np.testing.assert_allclose(extra, np.diag(np.diag(extra)), atol=1e-12)
    assert (np.diag(extra) >= 0).all() and np.diag(extra).max() > 0


def test_local_flow_alone_is_closed_form():
    c = make_composite(48, 64, seed=3)
    alpha = ifm.estimate_alpha_information_flow(c.image, c.trimap, cm_weight=0, iu_weight=0, known_to_unknown=False)
    np.testing.assert_allclose(alpha, estimate_alpha_closed_form(c.image, c.trimap, epsilon=1e-6), atol=1e-5)


# SAD (in thousands) on the 96×128 composites of test_closed_form/test_knn.
# Measured: information_flow 0.224, 0.182, 0.301; closed_form 0.144, 0.126,
# 0.303; knn 0.317, 0.252, 0.416; the trimap-only guess ~1.0.
CASES = [
    (dict(seed=0, foreground="astronaut", background="coffee"), 0.26),
    (dict(seed=1, foreground="chelsea", background="rocket"), 0.21),
    (dict(seed=2, foreground="coffee", background="astronaut"), 0.35),
]


@pytest.mark.parametrize("case, budget", CASES, ids=[c["foreground"] for c, _ in CASES])
def test_error_budget_next_to_closed_form(case, budget):
    c = make_composite(96, 128, **case)
    alpha = ifm.estimate_alpha_information_flow(c.image, c.trimap)
    assert alpha.shape == c.alpha.shape and alpha.dtype == np.float64
    assert (alpha[c.trimap == 255] == 1).all() and (alpha[c.trimap == 0] == 0).all()
    ours = sad(alpha, c.alpha)
    assert ours < budget
    assert ours < 0.4 * sad(np.where(c.trimap == 128, 0.5, c.trimap / 255.0), c.alpha)
    # Same range as closed-form matting (better on one of the three, ~1.5× on the others).
    assert ours < 1.7 * sad(estimate_alpha_closed_form(c.image, c.trimap), c.alpha)


def test_options_change_the_result_and_are_checked():
    c = make_composite(48, 64, seed=2)
    base = ifm.estimate_alpha_information_flow(c.image, c.trimap, known_to_unknown=True)
    without = ifm.estimate_alpha_information_flow(c.image, c.trimap, known_to_unknown=False)
    trimmed = ifm.estimate_alpha_information_flow(c.image, c.trimap, known_to_unknown=True, post_trim=True)
    assert np.abs(base - without).max() > 1e-3
    fg, bg = ifm.edge_trimming(c.image, c.trimap == 255, c.trimap == 0)
    assert (trimmed[fg] == 1).all() and (trimmed[bg] == 0).all()
    np.testing.assert_array_equal(trimmed[~(fg | bg)], base[~(fg | bg)])
    with pytest.raises(mattezoo.InputError, match="known_to_unknown must be 'auto', True or False"):
        ifm.estimate_alpha_information_flow(c.image, c.trimap, known_to_unknown="yes")
    with pytest.raises(mattezoo.InputError, match="cm_neighbors must be an int >= 1"):
        ifm.estimate_alpha_information_flow(c.image, c.trimap, cm_neighbors=0)
    with pytest.raises(mattezoo.InputError, match="ku_weight must be a finite number >= 0"):
        ifm.estimate_alpha_information_flow(c.image, c.trimap, ku_weight=float("nan"))
    with pytest.raises(mattezoo.InputError, match="unknown option.*Valid options: cm_neighbors"):
        ifm.checked_flow_options({"cm_k": 3})


def test_trimap_edge_cases():
    check_trimap_edge_cases(ifm.estimate_alpha_information_flow)


def test_tiny_regions_do_not_break_the_neighbour_counts():
    # One unknown pixel and a 2-pixel foreground: fewer candidates than K.
    image = np.random.default_rng(5).uniform(size=(6, 7, 3))
    trimap = np.zeros((6, 7), np.uint8)
    trimap[2, 2:4] = 255
    trimap[3, 3] = 128
    alpha = ifm.estimate_alpha_information_flow(image, trimap, known_to_unknown=True)
    assert 0 <= alpha[3, 3] <= 1 and np.isfinite(alpha).all()


def test_registered_method_runs_through_predict():
    c = make_composite(40, 48, seed=6)
    image8 = (c.image * 255).round().astype(np.uint8)
    spec = mattezoo.get_method("information_flow")
    assert spec.family == "classical" and spec.paper(test_set="P3M-500-P (normal)")[0].metrics["SAD"] == 10.793
    alpha = mattezoo.predict("information_flow", image8, c.trimap)
    # predict hands over float32 colours; the LLE solves amplify that rounding a little.
    np.testing.assert_allclose(alpha, ifm.estimate_alpha_information_flow(image8, c.trimap), atol=1e-4)
    assert isinstance(mattezoo.create_method("information_flow", known_to_unknown=False), ifm.InformationFlowMatting)
    with pytest.raises(mattezoo.errors.InvalidOptionError, match="has no option 'cm_k'"):
        mattezoo.create_method("information_flow", cm_k=3)
    with pytest.raises(mattezoo.InputError, match="iu_weight must be a finite number >= 0"):
        mattezoo.create_method("information_flow", iu_weight=-1)
    assert mattezoo.create_method("information_flow", iu_neighbors=3).flow_options["iu_neighbors"] == 3
