"""Classical matting and foreground estimation side by side with pymatting.

    python benchmarks/speed_classical.py [--height 600 --width 800 --repeats 3 --only closed_form knn learning_based foreground]

On one photo-over-photo composite with an exact matte (tests/classical/composites.py)
it prints, for closed-form, KNN, learning-based matting and multi-level foreground estimation, the
error of mattezoo and of pymatting against the ground truth, their wall times
and the time ratio. pymatting is timed warm: every function runs once before
timing, so its numba JIT compilation is excluded. The two run back to back in
each repeat; "speed-up" divides the best times, "median" is the median of the
per-repeat ratios (steadier when other jobs share the CPU). ``--preconditioners`` also
compares the solver's preconditioners on the closed-form system.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "classical"))
from composites import make_composite, sad  # noqa: E402

from mattezoo.classical import SolveInfo, cf_laplacian_system, estimate_foreground, solve_cg, split_trimap  # noqa: E402
from mattezoo.extension import status  # noqa: E402
from mattezoo_methods.closed_form import estimate_alpha_closed_form  # noqa: E402
from mattezoo_methods.knn import estimate_alpha_knn  # noqa: E402
from mattezoo_methods.learning_based import estimate_alpha_learning_based  # noqa: E402


def foreground_error(fg, c) -> float:
    weight = c.alpha[..., None]
    return float((np.abs(fg - c.foreground) * weight).sum() / (3 * weight.sum()))


def paired_times(ours, theirs, repeats: int):
    """Run both once (warm-up), then ``repeats`` times back to back.

    Returns both outputs and the two lists of wall times; on a shared machine
    the ratio of each back-to-back pair is steadier than either time alone.
    """
    out_ours, out_theirs = ours(), theirs()
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours()
        t_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs()
        t_theirs.append(time.perf_counter() - start)
    return out_ours, out_theirs, t_ours, t_theirs


def compare_preconditioners(c) -> list[dict]:
    regions = split_trimap(c.trimap, c.trimap.shape)
    system = cf_laplacian_system(c.image, regions.unknown, regions.known_alpha())
    rows = []
    for name in ("ichol", "amg", "jacobi"):
        info = SolveInfo()
        start = time.perf_counter()
        try:
            solve_cg(system.matrix, system.rhs, preconditioner=name, info=info, maxiter=20000)
        except Exception as exc:  # amg without pyamg, or no convergence: report it
            rows.append({"preconditioner": name, "error": str(exc)})
            continue
        rows.append({"preconditioner": name, "seconds": time.perf_counter() - start, "iterations": info.iterations})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=("closed_form", "knn", "learning_based", "foreground"), help="run only these cases")
    parser.add_argument("--preconditioners", action="store_true", help="also compare the CG preconditioners")
    parser.add_argument("--json", help="write the records to this file")
    args = parser.parse_args(argv)
    import pymatting

    c = make_composite(args.height, args.width, seed=args.seed, foreground="astronaut", background="coffee")
    tri = c.trimap / 255.0
    print(f"composite {args.width}x{args.height}, {int((c.trimap == 128).sum())} unknown pixels; {status()}; pymatting {pymatting.__version__}")
    records = []
    cases = [
        ("closed_form", lambda: estimate_alpha_closed_form(c.image, c.trimap), lambda: pymatting.estimate_alpha_cf(c.image, tri), "SAD"),
        ("knn", lambda: estimate_alpha_knn(c.image, c.trimap), lambda: pymatting.estimate_alpha_knn(c.image, tri), "SAD"),
        ("learning_based", lambda: estimate_alpha_learning_based(c.image, c.trimap),
         lambda: pymatting.estimate_alpha_lbdm(c.image, tri), "SAD"),
        ("foreground", lambda: estimate_foreground(c.image, c.alpha), lambda: pymatting.estimate_foreground_ml(c.image, c.alpha), "F error"),
    ]
    print(f"{'method':<15} {'metric':<8} {'mattezoo':>10} {'pymatting':>10} {'t mattezoo':>11} {'t pymatting':>12} "
          f"{'speed-up':>9} {'median':>7}")
    for name, ours, theirs, metric in cases:
        if args.only and name not in args.only:
            continue
        a, b, t_ours, t_theirs = paired_times(ours, theirs, args.repeats)
        score = (lambda x: sad(x, c.alpha)) if metric == "SAD" else (lambda x: foreground_error(x, c))
        pair_ratios = [p / o for o, p in zip(t_ours, t_theirs)]
        record = {"method": name, "metric": metric, "mattezoo": score(a), "pymatting": score(b),
                  "t_mattezoo": min(t_ours), "t_pymatting": min(t_theirs), "speedup": min(t_theirs) / min(t_ours),
                  "median_pair_speedup": float(np.median(pair_ratios))}
        records.append(record)
        print(f"{name:<15} {metric:<8} {record['mattezoo']:>10.4f} {record['pymatting']:>10.4f} "
              f"{record['t_mattezoo']:>10.3f}s {record['t_pymatting']:>11.3f}s {record['speedup']:>8.2f}x "
              f"{record['median_pair_speedup']:>6.2f}x")
    if args.preconditioners:
        print("\nCG preconditioners on the closed-form system:")
        for row in compare_preconditioners(c):
            if "error" in row:
                print(f"  {row['preconditioner']:<8} failed: {row['error']}")
            else:
                print(f"  {row['preconditioner']:<8} {row['seconds']:7.3f}s  {row['iterations']:5d} iterations")
            records.append({"method": "cf_solver", **row})
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
