"""NumPy fallbacks of the sampling-matting ops (used when the extension is
missing or ``MATTEZOO_DISABLE_EXT=1``).

Each function restates one compiled kernel (csrc/ops/cpu/*sampling*) vectorised
over pixels, with the same expressions in the same order, so both paths round
alike and choose the same samples. Arguments are already checked by
:mod:`mattezoo.classical.sampling`; images are ``H×W×3`` float64 in [0,1],
labels ``H×W`` uint8 (0 background, 1 foreground, 2 unknown).
"""

from __future__ import annotations

import numpy as np

BACKGROUND, FOREGROUND, UNKNOWN = 0, 1, 2
ALPHA_GUARD = 1e-10  # added to |F - B|^2, as kAlphaGuard in the kernels


def color_dist2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]


def project_alpha(c: np.ndarray, f: np.ndarray, b: np.ndarray) -> np.ndarray:
    """alpha of ``c`` on the segment from ``b`` to ``f``, clamped to [0,1] (both papers' eq. 2)."""
    d, e = f - b, c - b
    num = e[..., 0] * d[..., 0] + e[..., 1] * d[..., 1] + e[..., 2] * d[..., 2]
    den = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2] + ALPHA_GUARD
    return np.minimum(1.0, np.maximum(0.0, num / den))


def distortion(c: np.ndarray, f: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``|c - (alpha f + (1 - alpha) b)|``."""
    a = np.asarray(alpha)[..., None]
    r = c - (a * f + (1.0 - a) * b)
    return np.sqrt(r[..., 0] * r[..., 0] + r[..., 1] * r[..., 1] + r[..., 2] * r[..., 2])


def power(x: np.ndarray, e: float) -> np.ndarray:
    """``x**e`` as plain products for the papers' exponents 1-4 (as the kernels do)."""
    if e == 1.0:
        return x
    if e == 2.0:
        return x * x
    if e == 3.0:
        return x * x * x
    if e == 4.0:
        return (x * x) * (x * x)
    return np.power(x, e)


def disc_offsets(radius2: float):
    """``(dy, dx, d2)`` with ``d2 = dy² + dx² <= radius2``, nearest first, ties by dy then dx."""
    r = int(np.floor(np.sqrt(max(radius2, 0.0))))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    dy, dx = dy.ravel(), dx.ravel()
    d2 = dy * dy + dx * dx
    keep = d2.astype(np.float64) <= radius2
    order = np.argsort(d2[keep], kind="stable")
    return dy[keep][order], dx[keep][order], d2[keep][order]


def expand_known(image, labels, radius: int, color_threshold: float) -> np.ndarray:
    height, width = labels.shape
    flat_img, flat_lab = image.reshape(-1, 3), labels.ravel()
    out = flat_lab.copy()
    pending = np.flatnonzero(flat_lab == UNKNOWN)
    threshold2 = color_threshold * color_threshold
    for dy, dx, _ in zip(*disc_offsets(float(radius) * float(radius))):
        if pending.size == 0:
            break
        y, x = pending // width + dy, pending % width + dx
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        q = np.where(inside, y * width + x, 0)
        hit = inside & (flat_lab[q] != UNKNOWN) & (color_dist2(flat_img[pending], flat_img[q]) <= threshold2)
        out[pending[hit]] = flat_lab[q[hit]]
        pending = pending[~hit]
    return out.reshape(height, width)


def gather_rays(image, labels, pixels, num_rays: int):
    height, width = labels.shape
    flat_img, flat_lab = image.reshape(-1, 3), labels.ravel()
    n = pixels.size
    fg_index = np.full((n, num_rays), -1, np.int64)
    bg_index = np.full((n, num_rays), -1, np.int64)
    fg_energy = np.zeros((n, num_rays))
    bg_energy = np.zeros((n, num_rays))
    y, x = pixels // width, pixels % width
    j = (3 * (y % 3) + x % 3).astype(np.float64)
    sector = 2.0 * np.pi / num_rays
    for r in range(num_rays):
        theta = sector * (j / 9.0) + sector * float(r)
        cx, cy = np.cos(theta), np.sin(theta)
        major = np.maximum(np.abs(cx), np.abs(cy))
        ux, uy = cx / major, cy / major
        live = np.arange(n)
        found_f, found_b = np.zeros(n, bool), np.zeros(n, bool)
        energy = np.zeros(n)
        prev = flat_img[pixels].copy()
        step = 1
        while live.size:
            qx = np.floor(x[live] + float(step) * ux[live] + 0.5).astype(np.int64)
            qy = np.floor(y[live] + float(step) * uy[live] + 0.5).astype(np.int64)
            inside = (qx >= 0) & (qx < width) & (qy >= 0) & (qy < height)
            live, qx, qy = live[inside], qx[inside], qy[inside]
            q = qy * width + qx
            cur = flat_img[q]
            energy[live] += color_dist2(cur, prev[live])
            prev[live] = cur
            lab = flat_lab[q]
            new_f = ~found_f[live] & (lab == FOREGROUND)
            fg_index[live[new_f], r], fg_energy[live[new_f], r] = q[new_f], energy[live[new_f]]
            found_f[live[new_f]] = True
            new_b = ~found_b[live] & (lab == BACKGROUND)
            bg_index[live[new_b], r], bg_energy[live[new_b], r] = q[new_b], energy[live[new_b]]
            found_b[live[new_b]] = True
            live = live[~(found_f[live] & found_b[live])]
            step += 1
    return fg_index, bg_index, fg_energy, bg_energy


def _distance(p, q, width):
    dy = (p // width - q // width).astype(np.float64)
    dx = (p % width - q % width).astype(np.float64)
    return np.sqrt(dy * dy + dx * dx)


def select_pairs(image, pixels, fg_index, bg_index, fg_energy, bg_energy, e_n, e_a, e_f, e_b):
    height, width = image.shape[:2]
    flat_img = image.reshape(-1, 3)
    n, k = fg_index.shape
    best_f, best_b = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    best = np.full(n, np.inf)
    min_f = np.where(fg_index >= 0, fg_energy, np.inf).min(axis=1, initial=np.inf)
    min_b = np.where(bg_index >= 0, bg_energy, np.inf).min(axis=1, initial=np.inf)
    usable = np.isfinite(min_f) & np.isfinite(min_b)
    total = min_f + min_b
    prob_f = np.where(usable & (total > 0), min_b / np.where(usable & (total > 0), total, 1.0), 0.5)
    y, x = pixels // width, pixels % width
    c = flat_img[pixels]
    for a in range(k):
        f = fg_index[:, a]
        dist_f = power(_distance(pixels, np.maximum(f, 0), width), e_f)
        for bb in range(k):
            b = bg_index[:, bb]
            ok = usable & (f >= 0) & (b >= 0)
            fc, bc = flat_img[np.maximum(f, 0)], flat_img[np.maximum(b, 0)]
            alpha = project_alpha(c, fc, bc)
            total_m = np.zeros(n)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    qy, qx = y + dy, x + dx
                    inside = (qy >= 0) & (qy < height) & (qx >= 0) & (qx < width)
                    cq = flat_img[np.where(inside, qy * width + qx, pixels)]
                    m = distortion(cq, fc, bc, project_alpha(cq, fc, bc))
                    total_m = total_m + np.where(inside, m * m, 0.0)
            g = power(total_m, e_n) * power(prob_f + (1.0 - 2.0 * prob_f) * alpha, e_a) * dist_f
            g = g * power(_distance(pixels, np.maximum(b, 0), width), e_b)
            better = ok & (g < best)
            best[better], best_f[better], best_b[better] = g[better], f[better], b[better]
    return best_f, best_b


def sample_spread(image, samples) -> np.ndarray:
    """Mean squared colour distance of each sample to its (clipped) 5×5 neighbourhood."""
    height, width = image.shape[:2]
    flat_img = image.reshape(-1, 3)
    y, x = samples // width, samples % width
    total, count = np.zeros(samples.size), np.zeros(samples.size)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            qy, qx = y + dy, x + dx
            inside = (qy >= 0) & (qy < height) & (qx >= 0) & (qx < width)
            q = np.where(inside, qy * width + qx, samples)
            total = total + np.where(inside, color_dist2(flat_img[q], flat_img[samples]), 0.0)
            count += inside
    return total / count


def refine_pairs(image, labels, pixels, fg, bg, k_r: int, n_best: int, lam: float):
    height, width = labels.shape
    flat_img = image.reshape(-1, 3)
    n = pixels.size
    row = np.full(height * width, -1, np.int64)
    row[pixels] = np.arange(n)
    has_pair = (fg >= 0) & (bg >= 0)
    spread_f, spread_b = np.zeros(n), np.zeros(n)
    spread_f[has_pair] = sample_spread(image, fg[has_pair])
    spread_b[has_pair] = sample_spread(image, bg[has_pair])
    y, x = pixels // width, pixels % width
    c = flat_img[pixels]
    seen, kept = np.zeros(n, np.int64), np.zeros(n, np.int64)
    best_m, best_row = np.full((n, n_best), np.inf), np.zeros((n, n_best), np.int64)
    for dy, dx, _ in zip(*disc_offsets(float(k_r))):
        qy, qx = y + dy, x + dx
        inside = (seen < k_r) & (qy >= 0) & (qy < height) & (qx >= 0) & (qx < width)
        j = np.where(inside, row[np.where(inside, qy * width + qx, 0)], -1)
        valid = j >= 0
        valid[valid] = has_pair[j[valid]]
        if not valid.any():
            continue
        seen += valid
        idx, j = np.flatnonzero(valid), j[valid]
        fc, bc = flat_img[fg[j]], flat_img[bg[j]]
        m = distortion(c[idx], fc, bc, project_alpha(c[idx], fc, bc))
        pos = (best_m[idx] <= m[:, None]).sum(axis=1)  # an equal M stays behind the earlier tuple
        insert = pos < n_best
        idx, j, m, pos = idx[insert], j[insert], m[insert], pos[insert]
        for t in range(n_best - 1, 0, -1):
            shift = t > pos
            best_m[idx[shift], t] = best_m[idx[shift], t - 1]
            best_row[idx[shift], t] = best_row[idx[shift], t - 1]
        best_m[idx, pos], best_row[idx, pos] = m, j
        kept[idx] = np.minimum(kept[idx] + 1, n_best)
    mean_f, mean_b = np.zeros((n, 3)), np.zeros((n, 3))
    var_f, var_b = np.zeros(n), np.zeros(n)
    for t in range(n_best):
        use = t < kept
        j = best_row[:, t]
        mean_f = mean_f + np.where(use[:, None], flat_img[fg[j]], 0.0)
        mean_b = mean_b + np.where(use[:, None], flat_img[bg[j]], 0.0)
        var_f = var_f + np.where(use, spread_f[j], 0.0)
        var_b = var_b + np.where(use, spread_b[j], 0.0)
    count = np.maximum(kept, 1).astype(np.float64)
    mean_f, mean_b = mean_f / count[:, None], mean_b / count[:, None]
    var_f, var_b = var_f / count, var_b / count
    own_f = color_dist2(c, mean_f) <= var_f
    own_b = color_dist2(c, mean_b) <= var_b
    f_out = np.where(own_f[:, None], c, mean_f)
    b_out = np.where(own_b[:, None], c, mean_b)
    alpha_mean = project_alpha(c, mean_f, mean_b)
    alpha = np.where(own_f & own_b, alpha_mean, project_alpha(c, f_out, b_out))
    confidence = np.exp(-lam * distortion(c, mean_f, mean_b, alpha_mean))
    none = kept == 0
    f_out[none], b_out[none], alpha[none], confidence[none] = c[none], c[none], 0.5, 0.0
    return f_out, b_out, alpha, confidence


def smooth_locally(image, labels, pixels, foreground, background, alpha, confidence, m: float, lam: float):
    height, width = labels.shape
    flat_img, flat_lab = image.reshape(-1, 3), labels.ravel()
    F, B = flat_img.copy(), flat_img.copy()
    A = (flat_lab == FOREGROUND).astype(np.float64)
    conf = np.ones(height * width)
    F[pixels], B[pixels], A[pixels], conf[pixels] = foreground, background, alpha, confidence
    known = (flat_lab != UNKNOWN).astype(np.float64)
    sigma2 = m / (9.0 * np.pi)
    n = pixels.size
    y, x = pixels // width, pixels % width
    f_num, b_num = np.zeros((n, 3)), np.zeros((n, 3))
    f_den, b_den, fb_num, fb_den, a_num, a_den = (np.zeros(n) for _ in range(6))
    a_p = A[pixels]
    for dy, dx, d2 in zip(*disc_offsets(9.0 * sigma2)):
        g = np.exp(-float(d2) / (2.0 * sigma2))
        qy, qx = y + dy, x + dx
        inside = (qy >= 0) & (qy < height) & (qx >= 0) & (qx < width)
        q = np.where(inside, qy * width + qx, pixels)
        zero = np.where(inside, 1.0, 0.0)  # out-of-image neighbours add exact zeros
        aq, cq = A[q], conf[q]
        wc = g * cq if dy == 0 and dx == 0 else g * cq * np.abs(a_p - aq)
        wc = wc * zero
        wf, wb = wc * aq, wc * (1.0 - aq)
        f_num = f_num + wf[:, None] * F[q]
        b_num = b_num + wb[:, None] * B[q]
        f_den, b_den = f_den + wf, b_den + wb
        wfb = cq * aq * (1.0 - aq) * zero
        fb_num = fb_num + wfb * np.sqrt(color_dist2(F[q], B[q]))
        fb_den = fb_den + wfb
        wa = (cq * g + known[q]) * zero
        a_num, a_den = a_num + wa * aq, a_den + wa
    fs = np.where((f_den > 0)[:, None], f_num / np.where(f_den > 0, f_den, 1.0)[:, None], F[pixels])
    bs = np.where((b_den > 0)[:, None], b_num / np.where(b_den > 0, b_den, 1.0)[:, None], B[pixels])
    c_fb = np.sqrt(color_dist2(fs, bs))
    spread = (fb_den > 0) & (fb_num > 0)
    ratio = np.where(spread, np.minimum(1.0, c_fb / np.where(spread, fb_num / np.where(spread, fb_den, 1.0), 1.0)), 1.0)
    c = flat_img[pixels]
    alpha_s = project_alpha(c, fs, bs)
    conf_p = ratio * np.exp(-lam * distortion(c, fs, bs, alpha_s))
    alpha_local = np.where(a_den > 0, a_num / np.where(a_den > 0, a_den, 1.0), a_p)
    return np.minimum(1.0, np.maximum(0.0, conf_p * alpha_s + (1.0 - conf_p) * alpha_local))


# --- global sampling ---------------------------------------------------------------------------

_MASK = (1 << 64) - 1


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, stream: np.ndarray) -> np.ndarray:
    """Uniform [0,1) numbers, a hash of (seed, stream) as in the kernel."""
    with np.errstate(over="ignore"):
        key = np.uint64((seed * 0x9E3779B97F4A7C15) & _MASK)
        z = _mix64(key + _mix64(stream.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019)))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def stream_id(t: int, i: np.ndarray, n: int, d: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (np.uint64(t + 1) * np.uint64(n) + i.astype(np.uint64)) * np.uint64(128) + np.uint64(d)


def pair_cost(image, pixels, fg_pos, bg_pos, fg_dist, bg_dist, kappa):
    """``kappa * eps_c + eps_s(F) + eps_s(B)`` and alpha for pixels paired with raster samples ``fg_pos``/``bg_pos``."""
    width = image.shape[1]
    flat_img = image.reshape(-1, 3)
    c, fc, bc = flat_img[pixels], flat_img[fg_pos], flat_img[bg_pos]
    alpha = project_alpha(c, fc, bc)
    py, px = (pixels // width).astype(np.float64), (pixels % width).astype(np.float64)
    fy, fx = (fg_pos // width).astype(np.float64) - py, (fg_pos % width).astype(np.float64) - px
    by, bx = (bg_pos // width).astype(np.float64) - py, (bg_pos % width).astype(np.float64) - px
    cost = kappa * distortion(c, fc, bc, alpha) + np.sqrt(fy * fy + fx * fx) / fg_dist + np.sqrt(by * by + bx * bx) / bg_dist
    return cost, alpha


def global_search(image, pixels, fg_samples, bg_samples, fg_dist, bg_dist, kappa, iterations: int, seed: int):
    """The kernel's raster-scan search, run as a wavefront over anti-diagonals.

    A pixel reads only its own pair and those of the two neighbours before it
    in the scan (left and up, or right and down), which lie on the previous
    anti-diagonal, so processing whole anti-diagonals at once gives exactly the
    raster scan's result.
    """
    height, width = image.shape[:2]
    n, nf, nb = pixels.size, fg_samples.size, bg_samples.size
    seed = int(seed) & _MASK
    row = np.full(height * width, -1, np.int64)
    row[pixels] = np.arange(n)
    y, x = pixels // width, pixels % width
    everyone = np.arange(n)
    ci = np.minimum(nf - 1, np.floor(uniform(seed, stream_id(-1, everyone, n, 0)) * nf).astype(np.int64))
    cj = np.minimum(nb - 1, np.floor(uniform(seed, stream_id(-1, everyone, n, 1)) * nb).astype(np.int64))

    def cost_of(idx, a, b):
        return pair_cost(image, pixels[idx], fg_samples[a], bg_samples[b], fg_dist[idx], bg_dist[idx], kappa)

    cost, alpha = cost_of(everyone, ci, cj)

    def consider(idx, a, b):
        c, al = cost_of(idx, a, b)
        better = c < cost[idx]
        idx = idx[better]
        ci[idx], cj[idx], cost[idx], alpha[idx] = a[better], b[better], c[better], al[better]

    diagonal = y + x
    order = np.argsort(diagonal, kind="stable")
    starts = np.flatnonzero(np.r_[True, diagonal[order][1:] != diagonal[order][:-1]])
    groups = np.split(order, starts[1:])
    radii = []
    radius = float(max(nf, nb))
    while radius >= 1.0:
        radii.append(radius)
        radius *= 0.5
    for t in range(iterations):
        step = -1 if t % 2 == 0 else 1
        for idx in groups if t % 2 == 0 else groups[::-1]:
            for inside, neighbour in (((x[idx] + step >= 0) & (x[idx] + step < width), pixels[idx] + step),
                                      ((y[idx] + step >= 0) & (y[idx] + step < height), pixels[idx] + step * width)):
                j = np.where(inside, row[np.where(inside, neighbour, 0)], -1)
                ok = j >= 0
                if ok.any():
                    consider(idx[ok], ci[j[ok]], cj[j[ok]])
            for d, radius in enumerate(radii):
                u = 2.0 * uniform(seed, stream_id(t, idx, n, 2 * d)) - 1.0
                v = 2.0 * uniform(seed, stream_id(t, idx, n, 2 * d + 1)) - 1.0
                a = np.clip(ci[idx] + np.floor(radius * u + 0.5).astype(np.int64), 0, nf - 1)
                b = np.clip(cj[idx] + np.floor(radius * v + 0.5).astype(np.int64), 0, nb - 1)
                consider(idx, a, b)
    return ci, cj, cost, alpha
