"""Shared machinery of the classical (trimap-propagation) matting methods.

- :mod:`.trimap`: input checks and the split into foreground/background/unknown.
- :mod:`.laplacian`: closed-form and KNN matting Laplacians as constrained
  systems over the unknown pixels (compiled, with SciPy references).
- :mod:`.knn_search`: exact KD-tree k-nearest-neighbour search.
- :mod:`.solver`: preconditioned conjugate gradients (incomplete Cholesky,
  AMG or Jacobi preconditioners).
- :mod:`.data_term`: the matting Laplacian plus a per-pixel data term, the
  smoothing step of the sampling methods.
- :mod:`.foreground`: multi-level foreground estimation for clean cutouts.
- :mod:`.sampling`: the steps of the sampling-based methods (shared and
  global sampling), compiled, with NumPy fallbacks.
- :mod:`.robust_sampling`: robust matting's boundary samples and pair
  confidences.
- :mod:`.comprehensive`: comprehensive sampling's bands, colour clusters and
  pair selection (compiled, with NumPy fallbacks).

The methods themselves are plugins (``mattezoo_methods.closed_form``,
``mattezoo_methods.knn``).
"""

from .data_term import solve_with_data_term
from .foreground import estimate_foreground
from .knn_search import knn_search
from .laplacian import LinearSystem, cf_laplacian, cf_laplacian_system, knn_laplacian_system
from .sampling import (
    boundary_samples,
    expand_known_regions,
    gather_ray_samples,
    global_pair_search,
    nearest_sample_distance,
    refine_sample_pairs,
    select_sample_pairs,
    smooth_locally,
)
from .solver import PRECONDITIONERS, ConvergenceError, SolveInfo, make_preconditioner, solve_cg
from .trimap import TrimapRegions, as_float_image, split_trimap

__all__ = [
    "PRECONDITIONERS",
    "ConvergenceError",
    "LinearSystem",
    "SolveInfo",
    "TrimapRegions",
    "as_float_image",
    "boundary_samples",
    "cf_laplacian",
    "cf_laplacian_system",
    "estimate_foreground",
    "expand_known_regions",
    "gather_ray_samples",
    "global_pair_search",
    "knn_laplacian_system",
    "knn_search",
    "make_preconditioner",
    "nearest_sample_distance",
    "refine_sample_pairs",
    "select_sample_pairs",
    "smooth_locally",
    "solve_cg",
    "solve_with_data_term",
    "split_trimap",
]
