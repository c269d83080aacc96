"""Side-by-side times of the matting metrics: numpy/scipy/scikit-image reference vs mattezoo.

    python benchmarks/speed_metrics.py [--height 1080] [--width 1920] [--reps 7] [--device cpu|cuda]

On a synthetic portrait-like 1080×1920 pair (a wobbly blob with a fractional
band, strands, noise and specks; see mattezoo.metrics.synthetic) it checks
mattezoo's metrics against the reference, warms up, then times both back to
back (median of --reps) per metric group and for the whole suite, and prints
milliseconds and ratios (reference / mattezoo, so > 1 means mattezoo is
faster). ``--p3m-baseline`` also times Conn as P3M's evaluate.py computes it
(regionprops and an unused distance transform per threshold), the
implementation the issue's "about 1.8 s" refers to. ``--device cuda`` times
batches of pairs and reports pairs per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from mattezoo.extension import has_cuda_ops, has_ops, status
from mattezoo.metrics import evaluate, evaluate_batch, reference
from mattezoo.metrics.synthetic import synthetic_pair

GROUPS = [
    ("SAD/MSE/MAD (+ -T)", ("SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T")),
    ("GRAD", ("GRAD",)),
    ("CONN", ("CONN",)),
]


def median_ms(fn, reps: int) -> float:
    fn()  # warm-up (and caches), then back-to-back runs
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def p3m_style_conn(pred, gt, step=0.1):
    """Conn as P3M's core/evaluate.py computes it (regionprops, distance transform), for the baseline only."""
    from scipy.ndimage import distance_transform_edt
    from skimage.measure import label, regionprops

    h, w = pred.shape
    thresh = np.arange(0, 1.1, step)
    l_map = -np.ones((h, w), dtype=np.float32)
    for i in range(1, thresh.size):
        cc = regionprops(label((pred >= thresh[i]) & (gt >= thresh[i]), connectivity=1))
        if not cc:
            continue
        omega = np.zeros((h, w), dtype=np.float32)
        coords = cc[int(np.argmax([c.area for c in cc]))].coords
        omega[coords[:, 0], coords[:, 1]] = 1
        l_map[(l_map == -1) & (omega == 0)] = thresh[i - 1]
        dist = distance_transform_edt(omega == 0)
        dist = dist / dist.max()
    l_map[l_map == -1] = 1
    d_p, d_g = pred - l_map, gt - l_map
    phi_p, phi_g = 1 - d_p * (d_p >= 0.15), 1 - d_g * (d_g >= 0.15)
    return np.sum(np.abs(phi_p - phi_g)) / 1000


def check(got: dict, want: dict) -> None:
    for name, value in want.items():
        rel = 1e-6 if name not in ("GRAD", "CONN") else 1e-4
        if abs(got[name] - value) > rel * abs(value) + 1e-12:
            sys.exit(f"mismatch in {name}: mattezoo {got[name]!r}, reference {value!r}")


def run_cpu(args) -> None:
    pred, gt, trimap = synthetic_pair(args.height, args.width, seed=0)
    p, g, t = (torch.from_numpy(x) for x in (pred, gt, trimap))
    rows = []
    for title, names in GROUPS:
        want = reference.evaluate_image(pred, gt, trimap, names)
        check(evaluate(p, g, t, metrics=names), want)
        ref_ms = median_ms(lambda: reference.evaluate_image(pred, gt, trimap, names), max(3, args.reps // 2))
        ours_ms = median_ms(lambda: evaluate(p, g, t, metrics=names), args.reps)
        rows.append((title, ref_ms, ours_ms))
    for convention in ("whole-image", "trimap-region"):
        want = reference.evaluate_image(pred, gt, trimap, convention=convention)
        check(evaluate(p, g, t, convention=convention), want)
        ref_ms = median_ms(lambda: reference.evaluate_image(pred, gt, trimap, convention=convention), max(3, args.reps // 2))
        ours_ms = median_ms(lambda: evaluate(p, g, t, convention=convention), args.reps)
        rows.append((f"full suite, {convention}", ref_ms, ours_ms))
    print(f"\n{args.height}x{args.width} pair, CPU, {torch.get_num_threads()} threads; {status()}")
    print(f"  {'metrics':<30}{'reference ms':>14}{'mattezoo ms':>13}{'ratio':>9}")
    for title, ref_ms, ours_ms in rows:
        print(f"  {title:<30}{ref_ms:>14.1f}{ours_ms:>13.2f}{ref_ms / ours_ms:>8.1f}x")
    if args.p3m_baseline:
        want = reference.conn(pred, gt)
        got = p3m_style_conn(pred, gt)
        if abs(got - want) > 1e-4 * abs(want):
            sys.exit(f"P3M-style Conn {got} differs from the reference {want}")
        base_ms = median_ms(lambda: p3m_style_conn(pred, gt), 3)
        cheap_ms = rows[0][1] + rows[1][1]
        ours_full = rows[3][2]
        print(f"\n  P3M evaluate.py-style Conn: {base_ms:.0f} ms; with the reference SAD..GRAD the suite takes "
              f"{base_ms + cheap_ms:.0f} ms, {(base_ms + cheap_ms) / ours_full:.0f}x mattezoo's full suite")


def run_cuda(args) -> None:
    if not has_cuda_ops():
        sys.exit("--device cuda needs a GPU and the CUDA build of mattezoo._C")
    pred, gt, trimap = synthetic_pair(args.height, args.width, seed=0)
    want = reference.evaluate_image(pred, gt, trimap)
    print(f"\n{args.height}x{args.width} pairs on {torch.cuda.get_device_name(0)}; {status()}")
    for batch in (1, 8, 32):
        p, g, t = (torch.from_numpy(x).cuda().expand(batch, -1, -1).contiguous() for x in (pred, gt, trimap))
        got = evaluate_batch(p, g, t)
        check({k: float(v[-1]) for k, v in got.items()}, want)

        def fn():
            evaluate_batch(p, g, t)
            torch.cuda.synchronize()

        ms = median_ms(fn, args.reps)
        print(f"  batch {batch:>3}: {ms:8.2f} ms  ->  {batch * 1000 / ms:8.1f} pairs/s (full whole-image suite)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--p3m-baseline", action="store_true", help="also time Conn the way P3M's evaluate.py does")
    args = ap.parse_args(argv)
    if not has_ops():
        sys.exit(f"mattezoo._C is not loaded ({status()}); build it first")
    if args.device == "cuda":
        run_cuda(args)
    else:
        run_cpu(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
