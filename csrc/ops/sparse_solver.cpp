// Schemas of the sparse linear-algebra kernels behind mattezoo.classical.solver
// (CPU kernels: csrc/ops/cpu/sparse_solver_kernel.cpp). Matrices are CSR with
// int64 indptr/indices, sorted column indices and float64 values.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  // y = A x, rows in parallel.
  m.def("csr_matvec(Tensor indptr, Tensor indices, Tensor values, Tensor x) -> Tensor");
  // Threshold incomplete Cholesky factor L (A ~ L L^T) of a symmetric
  // matrix: left-looking column Cholesky that drops every |L_ij| <=
  // drop_tolerance (0 keeps all fill-in, a complete factorisation). The
  // diagonal of A is scaled by (1 + shift). Returns L column-wise (CSC,
  // diagonal first in each column; int64 indptr, int32 rows, float32 values)
  // and a status: -1 on success, the column of
  // the first non-positive pivot, or -2 when L would exceed max_nnz entries.
  m.def(
      "ichol(Tensor indptr, Tensor indices, Tensor values, float drop_tolerance, float shift, int max_nnz)"
      " -> (Tensor, Tensor, Tensor, int)");
  // x = (L L^T)^-1 b for a factor from ichol.
  m.def("ichol_solve(Tensor indptr, Tensor indices, Tensor values, Tensor b) -> Tensor");
}
