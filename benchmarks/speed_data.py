"""How fast the synthetic P3M set is made, against reading the same samples from disk.

    python benchmarks/speed_data.py [--size 256] [--n 60] [--reps 3]

Warms up, then times back to back, alternating: generating ``n`` samples with
:class:`mattezoo.data.SyntheticP3M` (normal image, blurred twin through
mattezoo.privacy, alpha, trimap, fg, bg, face mask) and reading ``n`` finished
samples of the same size with :class:`mattezoo.data.P3M10k` (seven PNGs each).
Prints samples per second of both, their ratio, the per-stage split of the
generator, and whether it meets the 50 samples/s bar at 256².

Every run is timed twice: wall clock (what a user waits) and the process's CPU
time (``time.process_time``, all its threads). On a machine shared with other
jobs the wall clock includes the time spent waiting for a core; the CPU time
is much less sensitive to that, so both are printed, and the per-stage split
is in CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict

import cv2

import mattezoo.data.synthetic.generator as gen
from mattezoo.data import P3M10k, SyntheticP3M, write_sample

STAGES = ("make_background", "make_strands", "draw_strands", "draw_body", "draw_head", "draw_cap", "blur_twin", "trimap_from_alpha")


def per_stage(ds: SyntheticP3M, n: int, clock=time.process_time) -> dict[str, float]:
    """Milliseconds per sample spent in each generator stage (wraps the module's functions)."""
    spent: dict[str, float] = defaultdict(float)
    originals = {name: getattr(gen, name) for name in STAGES}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += clock() - start

        return wrapper

    try:
        for name, fn in originals.items():
            setattr(gen, name, timed(name, fn))
        start = clock()
        for i in range(n):
            ds[i]
        total = clock() - start
    finally:
        for name, fn in originals.items():
            setattr(gen, name, fn)
    out = {k: spent[k] / n * 1e3 for k in STAGES}
    out["rest (finish, composite, sample)"] = total / n * 1e3 - sum(out.values())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--n", type=int, default=60, help="samples per timed run")
    ap.add_argument("--reps", type=int, default=3, help="alternating timed runs (median reported)")
    args = ap.parse_args(argv)
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; size {args.size}², {args.n} samples per run")

    with tempfile.TemporaryDirectory() as tmp:
        ds = SyntheticP3M("P3M-500-P", n=args.n * (args.reps + 2), size=args.size, seed=0)
        for i in range(args.n):
            write_sample(tmp, "P3M-500-P", ds[i])
        reader = P3M10k(tmp, "P3M-500-P")
        offset = [args.n]

        def generate():
            start = offset[0]
            offset[0] += args.n  # fresh samples every run
            for i in range(start, start + args.n):
                ds[i]

        def read():
            for i in range(len(reader)):
                reader[i]

        generate(), read()  # warm-up: imports, photo cache, allocator
        wall = {"generate": [], "read": []}
        cpu = {"generate": [], "read": []}
        for _ in range(args.reps):
            for key, fn in (("generate", generate), ("read", read)):
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                wall[key].append(time.perf_counter() - start)
                cpu[key].append(time.process_time() - start_cpu)
    g, r = statistics.median(wall["generate"]) / args.n, statistics.median(wall["read"]) / args.n
    gc, rc = statistics.median(cpu["generate"]) / args.n, statistics.median(cpu["read"]) / args.n
    print(f"\n  {'':<25}{'wall clock':>27}{'process CPU time':>30}")
    print(f"  generate (SyntheticP3M)  {1 / g:8.1f} samples/s {g * 1e3:7.2f} ms   {1 / gc:8.1f} samples/s {gc * 1e3:7.2f} ms")
    print(f"  read back (P3M10k, PNG)  {1 / r:8.1f} samples/s {r * 1e3:7.2f} ms   {1 / rc:8.1f} samples/s {rc * 1e3:7.2f} ms")
    print(f"  ratio generate / read:   {r / g:8.2f}x {'':<20}{rc / gc:8.2f}x   (> 1: making a sample is faster than reading one)")
    print("\n  generator stages, CPU ms/sample:")
    for name, ms in per_stage(SyntheticP3M("train", n=args.n, size=args.size, seed=1), args.n).items():
        print(f"    {name:<34}{ms:7.2f}")
    if args.size == 256:
        for clock, per in (("wall clock", g), ("CPU time", gc)):
            verdict = "meets" if 1 / per >= 50 else "MISSES"
            print(f"\n  {verdict} the bar of 50 samples/s at 256² by {clock} ({1 / per:.1f}/s)", end="")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
