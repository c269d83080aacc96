// Schemas of the sparse matting-Laplacian ops used by the classical methods.
//
// Both ops build the linear system of a Laplacian L restricted to the unknown
// pixels U with the known pixels K as hard constraints (Grady et al. 2005):
//
//     L_UU x = -L_UK alpha_K
//
// They return L_UU in CSR form (indptr, indices, values; rows and columns are
// the unknown pixels in raster order) and the right-hand side. Marking every
// pixel unknown yields the full Laplacian and a zero right-hand side.
// Python wrappers with the user-facing checks: mattezoo/classical/laplacian.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  // Levin et al. 2008, closed-form matting. image: [H,W,3] float64;
  // unknown: [H,W] bool; known_alpha: [H,W] float64 (read where ~unknown).
  m.def(
      "cf_laplacian_system(Tensor image, Tensor unknown, Tensor known_alpha, float epsilon, int radius)"
      " -> (Tensor indptr, Tensor indices, Tensor values, Tensor rhs)");
  // KNN matting (Chen et al. 2013). neighbors: [N,K] int64 (a pixel's own
  // index is ignored); weights: [N,K] float64 or an empty tensor for weight 1.
  // The affinity is symmetrised, W = A + A^T, and L = D - W.
  m.def(
      "knn_laplacian_system(Tensor neighbors, Tensor weights, Tensor unknown, Tensor known_alpha)"
      " -> (Tensor indptr, Tensor indices, Tensor values, Tensor rhs)");
}
