"""Make the comparison table of docs/classical.md: every classical method on the same composites.

    python docs/make_classical_table.py [--height 240 --width 320] [--threads 1] [--no-pymatting]

Runs every registered method of the ``classical`` family through the registry
(``create_method`` + ``run_method``, as the bench does) on photo-over-photo
composites with exact mattes (tests/classical/composites.py), and prints a
Markdown table: the mean SAD, MSE, GRAD and CONN over the composites in the
trimap-region convention (unknown band only, as matting benchmarks score
trimap-based methods), and the median seconds per image. With pymatting
installed, its closed-form, KNN and learning-based mattes are scored too, as
an outside reference. Nothing here is tuned per image: every method runs
with its defaults.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "classical"))
from composites import make_composite  # noqa: E402

from mattezoo import create_method, get_method, list_methods  # noqa: E402
from mattezoo.inference import run_method, trimap_to_tensor  # noqa: E402
from mattezoo.metrics import evaluate  # noqa: E402

PAIRS = [("astronaut", "coffee"), ("chelsea", "rocket"), ("coffee", "astronaut"),
         ("rocket", "chelsea"), ("immunohistochemistry", "hubble_deep_field"), ("astronaut", "hubble_deep_field")]
METRICS = ("SAD", "MSE", "GRAD", "CONN")


def composites(height: int, width: int):
    return [make_composite(height, width, seed=i, foreground=f, background=b) for i, (f, b) in enumerate(PAIRS)]


def score(estimate, cases) -> tuple[dict[str, float], float]:
    """Mean metrics of ``estimate(composite) -> alpha`` over the cases, and its median seconds per image."""
    totals, seconds = {m: [] for m in METRICS}, []
    for c in cases:
        start = time.perf_counter()
        alpha = estimate(c)
        seconds.append(time.perf_counter() - start)
        for name, value in evaluate(alpha, c.alpha, c.trimap, METRICS, convention="trimap-region").items():
            totals[name].append(value)
    return {m: float(np.mean(v)) for m, v in totals.items()}, statistics.median(seconds)


def registry_estimator(name: str):
    method = create_method(name)

    def estimate(c):
        image = torch.from_numpy(c.image).permute(2, 0, 1)[None].float()
        return run_method(method, image, trimap_to_tensor(c.trimap))[0, 0].numpy()

    return estimate


def pymatting_estimators():
    try:
        import pymatting
    except ImportError:
        return {}
    return {f"pymatting {name}": (lambda c, f=f: f(c.image, c.trimap / 255.0)) for name, f in
            (("estimate_alpha_cf", pymatting.estimate_alpha_cf), ("estimate_alpha_knn", pymatting.estimate_alpha_knn),
             ("estimate_alpha_lbdm", pymatting.estimate_alpha_lbdm))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-pymatting", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = composites(args.height, args.width)
    estimators = {name: registry_estimator(name) for name in list_methods(family="classical")}
    if not args.no_pymatting:
        estimators.update(pymatting_estimators())
    trimap_only = score(lambda c: np.where(c.trimap == 128, 0.5, c.trimap / 255.0), cases)[0]
    unknown = np.mean([(c.trimap == 128).mean() for c in cases])
    print(f"{len(cases)} composites of {args.height}×{args.width}, {100 * unknown:.0f} % unknown on average; "
          f"{args.threads} thread(s); trimap-region convention.\n")
    print("| method | SAD | MSE | GRAD | CONN | s/image |")
    print("|---|---|---|---|---|---|")
    for name, estimate in estimators.items():
        estimate(cases[0])  # warm up: compiled ops' first calls, pymatting's numba JIT
        means, seconds = score(estimate, cases)
        label = name if name.startswith("pymatting") else f"`{name}` ({get_method(name).summary.split(':')[0]})"
        print(f"| {label} | " + " | ".join(f"{means[m]:.4g}" for m in METRICS) + f" | {seconds:.2f} |")
    print("| trimap only (unknown = 0.5) | " + " | ".join(f"{trimap_only[m]:.4g}" for m in METRICS) + " | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
