"""Box filter and colour guided filter (He, Sun and Tang) on batched torch tensors.

Both work on any device and cost O(1) per pixel whatever the radius, because
window sums come from integral images (cumulative sums) rather than from a
convolution with a (2r+1)² kernel. Windows are clipped at the image border and
every mean divides by the number of pixels actually inside the window, as in
the authors' reference code.

Sums run in float64: an integral image of a megapixel picture reaches ~1e6,
where float32 keeps only ~0.1 of absolute precision, and the guided filter
subtracts such means from each other (variances), which would amplify that
error far beyond a typical ``eps``.
"""

from __future__ import annotations

import torch


def _window_sum_1d(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Sum of ``x`` over ``[i - radius, i + radius]`` (clipped) along ``dim``, for every ``i``."""
    dim = dim % x.ndim
    size = x.shape[dim]
    radius = min(radius, size)  # a wider window covers the same pixels
    cumsum = x.cumsum(dim)
    # With integral[k] = sum of x[:k] and padded[j] = integral[clamp(j - r, 0, size)]
    # (r zeros before it, r copies of the total after it), window i sums to
    # padded[i + 2r + 1] - padded[i]: two slices, no gather.
    head_shape, tail_shape = list(x.shape), list(x.shape)
    head_shape[dim], tail_shape[dim] = radius + 1, radius
    head = x.new_zeros(head_shape)
    tail = cumsum.narrow(dim, size - 1, 1).expand(tail_shape)
    padded = torch.cat([head, cumsum, tail], dim=dim)
    return padded.narrow(dim, 2 * radius + 1, size) - padded.narrow(dim, 0, size)


def _window_count_1d(size: int, radius: int, device) -> torch.Tensor:
    index = torch.arange(size, device=device)
    return ((index + radius + 1).clamp(max=size) - (index - radius).clamp(min=0)).to(torch.float64)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of ``x`` (``[..., H, W]``) over the ``(2r+1)×(2r+1)`` window around each pixel.

    The window is clipped to the image and the mean is over the pixels inside
    it. Computed in float64 and returned in float64.
    """
    x = x.to(torch.float64)
    height, width = x.shape[-2:]
    sums = _window_sum_1d(_window_sum_1d(x, radius, -2), radius, -1)
    counts = _window_count_1d(height, radius, x.device)[:, None] * _window_count_1d(width, radius, x.device)[None, :]
    return sums / counts


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Filter ``src`` (``[B,1,H,W]``) so that it follows the edges of the colour ``guide`` (``[B,3,H,W]``).

    In every window ω_k the output is modelled as a linear function of the
    guide's colour, ``q = a_kᵀ I + b_k``; ``a_k`` is the ridge-regression fit of
    ``src`` on ``I`` in that window, ``a_k = (Σ_k + eps·U)⁻¹ cov_k(I, p)``, and
    every pixel averages the ``(a_k, b_k)`` of all windows that contain it
    (He, Sun, Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013, eq. 14).

    :param radius: window radius ``r`` (windows are ``2r+1`` pixels wide).
    :param eps: regularisation; larger values smooth more, smaller values
        follow the guide's edges more closely.
    :return: ``[B,1,H,W]`` float64.
    """
    guide = guide.to(torch.float64)
    src = src.to(torch.float64)
    r, g, b = guide[:, 0:1], guide[:, 1:2], guide[:, 2:3]
    # One box pass over everything the fit needs: the guide's means, the
    # source's mean, the cross terms and the six distinct second moments.
    stacked = torch.cat([guide, src, guide * src, r * r, r * g, r * b, g * g, g * b, b * b], dim=1)
    means = box_mean(stacked, radius)
    mean_i, mean_p, mean_ip = means[:, 0:3], means[:, 3:4], means[:, 4:7]
    cov_ip = mean_ip - mean_i * mean_p
    mr, mg, mb = mean_i[:, 0:1], mean_i[:, 1:2], mean_i[:, 2:3]
    # Symmetric covariance [[srr, srg, srb], [srg, sgg, sgb], [srb, sgb, sbb]] + eps·U.
    srr = means[:, 7:8] - mr * mr + eps
    srg = means[:, 8:9] - mr * mg
    srb = means[:, 9:10] - mr * mb
    sgg = means[:, 10:11] - mg * mg + eps
    sgb = means[:, 11:12] - mg * mb
    sbb = means[:, 12:13] - mb * mb + eps
    # Closed-form inverse by cofactors: element-wise, so it batches over pixels
    # and gives bit-identical results whatever the batch size.
    c_rr = sgg * sbb - sgb * sgb
    c_rg = srb * sgb - srg * sbb
    c_rb = srg * sgb - srb * sgg
    c_gg = srr * sbb - srb * srb
    c_gb = srb * srg - srr * sgb
    c_bb = srr * sgg - srg * srg
    det = srr * c_rr + srg * c_rg + srb * c_rb
    cr, cg, cb = cov_ip[:, 0:1], cov_ip[:, 1:2], cov_ip[:, 2:3]
    a = torch.cat(
        [
            c_rr * cr + c_rg * cg + c_rb * cb,
            c_rg * cr + c_gg * cg + c_gb * cb,
            c_rb * cr + c_gb * cg + c_bb * cb,
        ],
        dim=1,
    ) / det
    offset = mean_p - (a * mean_i).sum(dim=1, keepdim=True)
    mean_coeffs = box_mean(torch.cat([a, offset], dim=1), radius)
    return (mean_coeffs[:, 0:3] * guide).sum(dim=1, keepdim=True) + mean_coeffs[:, 3:4]
