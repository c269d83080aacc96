// Shared pieces of the sparse solver kernels (schemas: sparse_solver.cpp).
//
// The incomplete Cholesky kernels (cpu/sparse_ichol_kernel.cpp) and the fused
// conjugate gradients (cpu/sparse_solver_kernel.cpp) both apply the factor, so
// its layout and the solve are declared here.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <vector>

namespace mattezoo::sparse {

// A factor L from mattezoo::ichol, column-wise (CSC) with the diagonal first
// in each column, rows sorted, int32 rows and float32 values.
//
// `parts` are column bounds [0, e1, ..., ep]: the columns of each range
// [e_q, e_q+1) touch only rows of their own range and of the separator
// [ep, n), which comes last. The parts are factored and solved in parallel,
// the separator after them. [0, n] is one part and an empty separator.
struct FactorView {
  int64_t n = 0;
  const int64_t* ptr = nullptr;
  const int32_t* row = nullptr;
  const float* val = nullptr;
  std::vector<int64_t> parts;

  int64_t separator_begin() const { return parts.back(); }
};

// Checks `parts` (sorted bounds from 0 to at most n) and returns them.
std::vector<int64_t> checked_parts(const char* op, c10::IntArrayRef parts, int64_t n);

// Views the factor tensors returned by mattezoo::ichol (checking their types and sizes).
FactorView factor_view(const char* op, const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& values,
                       c10::IntArrayRef parts);

// x <- (L L^T)^-1 x in place; the parts in parallel unless `parallel` is false.
void ichol_apply(const FactorView& factor, double* x, bool parallel = true);

}  // namespace mattezoo::sparse
