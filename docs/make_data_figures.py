"""Make the pictures in docs/data.md from the code: ``python docs/make_data_figures.py``.

Writes docs/img/data/synthetic_grid.png (one portrait per row: normal image,
face-blurred twin, alpha, trimap; every view and framing the generator draws)
and docs/img/data/hair_alpha.png (a close-up of a matte's hair, showing the
fractional alpha of single strands). Deterministic: same code, same pictures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from mattezoo.data import SyntheticP3M
from mattezoo.data.synthetic import make_identity
from mattezoo.images import write_png

OUT = Path(__file__).resolve().parent / "img" / "data"
WANTED = (("frontal", "half"), ("three-quarter", "half"), ("profile", "half"), ("back", "half"), ("frontal", "full"), ("three-quarter", "half"))


def pick(ds: SyntheticP3M) -> list[int]:
    """Indices of the first portrait of each wanted (view, framing), in order."""
    chosen, wanted = [], list(WANTED)
    for i in range(len(ds)):
        p = ds.render(i)
        key = (p.view, p.framing)
        if key in wanted:
            wanted.remove(key)
            chosen.append(i)
        if not wanted:
            break
    return chosen


def grey3(a: np.ndarray) -> np.ndarray:
    a = np.round(a * 255).astype(np.uint8) if a.dtype != np.uint8 else a
    return np.repeat(a[..., None], 3, axis=2)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def grid(size: int, tile: int) -> np.ndarray:
    ds = SyntheticP3M("P3M-500-NP", n=80, size=size, seed=0)
    rows = []
    for i in pick(ds):
        s = ds[i]
        cells = [s.normal, s.blurred, grey3(s.alpha), grey3(s.trimap)]
        cells = [cv2.resize(c, (tile, tile), interpolation=cv2.INTER_AREA) for c in cells]
        view = {"three-quarter": "3/4 view"}.get(s.meta["view"], s.meta["view"])
        names = (f"{view}, {s.meta['framing']}", "blurred twin", "alpha", "trimap")
        rows.append(np.concatenate([label(c, n) for c, n in zip(cells, names)], axis=1))
    return np.concatenate(rows, axis=0)


def hair_closeup(size: int, zoom: int) -> np.ndarray:
    """Image and matte around the head of the first frontal portrait with long or curly hair."""
    ds = SyntheticP3M("P3M-500-NP", n=200, size=size, seed=0)
    for i in range(len(ds)):
        p = ds.render(i)
        if p.view == "frontal" and p.framing == "half" and make_identity(ds.identity_key(i)).hair.kind in ("long", "curly"):
            break
    cx, cy, s = p.pose.cx, p.pose.cy, p.pose.scale
    y0, y1 = max(0, int(cy - 1.7 * s)), min(size, int(cy + 3.2 * s))
    x0, x1 = max(0, int(cx - 2.4 * s)), min(size, int(cx + 2.4 * s))
    big = lambda a: cv2.resize(a[y0:y1, x0:x1], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)  # noqa: E731
    return np.concatenate([big(p.image), big(grey3(p.alpha))], axis=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    write_png(args.out / "synthetic_grid.png", grid(size=256, tile=136))
    write_png(args.out / "hair_alpha.png", hair_closeup(size=512, zoom=1))
    for f in sorted(args.out.glob("*.png")):
        print(f"{f} ({f.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
