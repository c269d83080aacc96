// Schemas of the sparse linear-algebra kernels behind mattezoo.classical.solver
// (CPU kernels: csrc/ops/cpu/sparse_solver_kernel.cpp and
// csrc/ops/cpu/sparse_ichol_kernel.cpp). Matrices are CSR with int64
// indptr/indices, sorted column indices and float64 values.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  // y = A x, rows in parallel.
  m.def("csr_matvec(Tensor indptr, Tensor indices, Tensor values, Tensor x) -> Tensor");
  // P S A S P^T for S = diag(scale): row t of the result is row perm[t] of A
  // (scaled), columns renumbered to match and sorted.
  m.def(
      "csr_permute_symmetric(Tensor indptr, Tensor indices, Tensor values, Tensor perm, Tensor scale)"
      " -> (Tensor, Tensor, Tensor)");
  // Threshold incomplete Cholesky factor L (A ~ L L^T) of a symmetric
  // matrix: left-looking column Cholesky that drops every |L_ij| <=
  // drop_tolerance (0 keeps all fill-in, a complete factorisation). The
  // diagonal of A is scaled by (1 + shift). `parts` = [0, e1, ..., ep] splits
  // the columns into independent ranges, factored in parallel, and a
  // separator [ep, n) factored last; no entry of A may join two ranges
  // ([0, n]: one range, serial). Returns L column-wise (CSC, diagonal first in
  // each column; int64 indptr, int32 rows, float32 values) and a status: -1
  // on success, the column of the first non-positive pivot, or -2 when L would
  // exceed max_nnz entries.
  m.def(
      "ichol(Tensor indptr, Tensor indices, Tensor values, float drop_tolerance, float shift, int max_nnz, int[] parts)"
      " -> (Tensor, Tensor, Tensor, int)");
  // x = (L L^T)^-1 b for a factor from ichol (and the parts it was made with).
  m.def("ichol_solve(Tensor indptr, Tensor indices, Tensor values, int[] parts, Tensor b) -> Tensor");
  // Conjugate gradients on A x = b preconditioned by the ichol factor L of A,
  // from x0 (empty: zeros), until sqrt(sum (weights_i r_i)^2) <= tolerance
  // (weights empty: the plain residual norm) or maxiter iterations. Returns x,
  // the iterations run, the final weighted residual norm and a status: 0
  // converged, 1 out of iterations, 2 broke down (A not positive definite).
  m.def(
      "ichol_pcg(Tensor a_indptr, Tensor a_indices, Tensor a_values, Tensor l_indptr, Tensor l_indices, Tensor l_values,"
      " int[] parts, Tensor b, Tensor x0, Tensor weights, float tolerance, int maxiter) -> (Tensor, int, float, int)");
}
