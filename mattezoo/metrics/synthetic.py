"""Synthetic matte pairs for tests, benchmarks and examples (nothing is downloaded).

A "portrait-like" ground truth: a wobbly blob whose edge is a band of
fractional alpha, plus thin hair-like strands; the prediction is the same blob
slightly moved and resized, with noise in the band, a few false-positive
specks and holes. Both are quantised to k/255 like mattes read from PNG files.
The trimap marks the band, grown by a few pixels, as unknown.
"""

from __future__ import annotations

import numpy as np


def _blob(h: int, w: int, cy: float, cx: float, radius: float, band: float, phase: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = (yy - cy) / 1.3, xx - cx  # taller than wide, like a portrait
    r = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx)
    edge = radius * (1.0 + 0.08 * np.sin(5 * theta + phase) + 0.04 * np.sin(13 * theta - 2 * phase))
    return np.clip((edge - r) / band + 0.5, 0.0, 1.0)


def synthetic_pair(h: int = 1080, w: int = 1920, seed: int = 0, band: float = 12.0):
    """``(pred, gt, trimap)``: float32 ``H×W`` alphas in [0,1] and a uint8 0/128/255 trimap."""
    rng = np.random.default_rng(seed)
    radius = 0.3 * min(h, w * 1.3)
    cy, cx = 0.55 * h, 0.5 * w
    gt = _blob(h, w, cy, cx, radius, band, phase=0.0)
    # Hair-like strands: thin sinusoidal lines of partial alpha around the top.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for k in range(6):
        x0 = cx + (k - 2.5) * radius * 0.25
        line = np.abs(xx - x0 - 0.05 * radius * np.sin(yy / (0.1 * radius + 1) + k))
        strand = np.clip(1.0 - line / 2.0, 0, 1) * 0.6 * (yy < cy) * (yy > cy - 1.5 * radius)
        gt = np.maximum(gt, strand)
    pred = _blob(h, w, cy + 0.003 * h, cx - 0.002 * w, radius * 1.01, band * 1.3, phase=0.05)
    soft = (pred > 0) & (pred < 1)
    pred = np.where(soft, pred + rng.normal(0.0, 0.05, (h, w)), pred)
    for _ in range(12):  # specks and holes
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        s = max(1, int(rng.integers(1, max(2, min(h, w) // 40))))
        pred[max(0, y - s) : y + s, max(0, x - s) : x + s] = rng.uniform(0, 1)
    pred = np.clip(pred, 0, 1)
    gt8 = np.round(gt * 255).astype(np.uint8)
    pred8 = np.round(pred * 255).astype(np.uint8)
    unknown = (gt8 > 0) & (gt8 < 255)
    grow = max(1, int(band // 2))
    grown = unknown.copy()
    for _ in range(grow):  # grow the unknown band by `grow` pixels (4-neighbourhood)
        g = grown.copy()
        g[1:, :] |= grown[:-1, :]
        g[:-1, :] |= grown[1:, :]
        g[:, 1:] |= grown[:, :-1]
        g[:, :-1] |= grown[:, 1:]
        grown = g
    trimap = np.where(gt8 == 255, 255, 0).astype(np.uint8)
    trimap[grown] = 128
    return pred8.astype(np.float32) / 255.0, gt8.astype(np.float32) / 255.0, trimap
