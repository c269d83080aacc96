// CPU kernels of the sparse solver ops (schemas: csrc/ops/sparse_solver.cpp):
// the CSR product, the symmetric reordering, and conjugate gradients
// preconditioned by an incomplete Cholesky factor (cpu/sparse_ichol_kernel.cpp),
// the whole iteration in one call so that no step goes back to Python.
#include "ops/sparse_solver.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

namespace {

struct Csr {
  int64_t n;
  const int64_t* ptr;
  const int64_t* col;
  const double* val;
};

// Keeps the contiguous int64/float64 copies alive while the raw pointers are used.
struct CsrInput {
  at::Tensor indptr, indices, values;
  Csr view() const {
    return Csr{indptr.numel() - 1, indptr.data_ptr<int64_t>(), indices.data_ptr<int64_t>(), values.data_ptr<double>()};
  }
};

CsrInput csr_input(const char* op, const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& values) {
  TORCH_CHECK(indptr.dim() == 1 && indptr.numel() >= 1, op, ": indptr must be 1-D with N+1 entries");
  TORCH_CHECK(indices.dim() == 1 && values.dim() == 1 && indices.numel() == values.numel(), op,
              ": indices and values must be 1-D of equal length");
  CsrInput in{indptr.to(at::kLong).contiguous(), indices.to(at::kLong).contiguous(), values.to(at::kDouble).contiguous()};
  const int64_t* ptr = in.indptr.data_ptr<int64_t>();
  TORCH_CHECK(ptr[0] == 0 && ptr[in.indptr.numel() - 1] == indices.numel(), op, ": indptr does not match indices");
  return in;
}

void check_columns(const char* op, const Csr& a) {
  at::parallel_for(0, a.n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t p = a.ptr[begin]; p < a.ptr[end]; ++p) {
      TORCH_CHECK(a.col[p] >= 0 && a.col[p] < a.n, op, ": column index ", a.col[p], " out of range [0, ", a.n, ")");
    }
  });
}

void matvec(const Csr& a, const double* x, double* y, bool parallel = true) {
  auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double s = 0.0;
      for (int64_t p = a.ptr[i]; p < a.ptr[i + 1]; ++p) s += a.val[p] * x[a.col[p]];
      y[i] = s;
    }
  };
  if (parallel) {
    at::parallel_for(0, a.n, 2048, rows);
  } else {
    rows(0, a.n);
  }
}

// Below this many rows the CG steps run on one thread. Each step of an
// 800x600 closed-form solve takes ~10 ms; on a busy machine a parallel
// region costs more than that in waiting for the second thread to be
// scheduled (measured on the shared 2-core box: 0.15 s serial, 0.33-0.55 s
// with two threads for 7 iterations), and on an idle one it saves little.
constexpr int64_t kParallelCgRows = int64_t{1} << 18;

at::Tensor csr_matvec_cpu(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& values, const at::Tensor& x_in) {
  const CsrInput in = csr_input("csr_matvec", indptr, indices, values);
  const Csr a = in.view();
  TORCH_CHECK(x_in.dim() == 1 && x_in.numel() == a.n, "csr_matvec: x must be 1-D with ", a.n, " entries");
  check_columns("csr_matvec", a);
  const auto x = x_in.to(at::kDouble).contiguous();
  auto y = at::empty({a.n}, at::kDouble);
  matvec(a, x.data_ptr<double>(), y.data_ptr<double>());
  return y;
}

// B = P S A S P^T for S = diag(scale) and the new order `perm` (row t of B is
// row perm[t] of A), with sorted columns: the input of ichol and of the CG.
std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_permute_symmetric_cpu(const at::Tensor& indptr, const at::Tensor& indices,
                                                                         const at::Tensor& values, const at::Tensor& perm_in,
                                                                         const at::Tensor& scale_in) {
  const CsrInput in = csr_input("csr_permute_symmetric", indptr, indices, values);
  const Csr a = in.view();
  const int64_t n = a.n;
  TORCH_CHECK(perm_in.dim() == 1 && perm_in.numel() == n, "csr_permute_symmetric: perm must be 1-D with ", n, " entries");
  TORCH_CHECK(scale_in.dim() == 1 && scale_in.numel() == n, "csr_permute_symmetric: scale must be 1-D with ", n, " entries");
  check_columns("csr_permute_symmetric", a);
  const auto perm_t = perm_in.to(at::kLong).contiguous();
  const auto scale_t = scale_in.to(at::kDouble).contiguous();
  const int64_t* perm = perm_t.data_ptr<int64_t>();
  const double* scale = scale_t.data_ptr<double>();
  std::vector<int64_t> inverse(n, -1);
  for (int64_t t = 0; t < n; ++t) {
    TORCH_CHECK(perm[t] >= 0 && perm[t] < n && inverse[perm[t]] == -1, "csr_permute_symmetric: perm is not a permutation of 0..",
                n - 1, " (entry ", t, " is ", perm[t], ")");
    inverse[perm[t]] = t;
  }
  auto out_ptr_t = at::empty({n + 1}, at::kLong);
  int64_t* out_ptr = out_ptr_t.data_ptr<int64_t>();
  out_ptr[0] = 0;
  for (int64_t t = 0; t < n; ++t) out_ptr[t + 1] = out_ptr[t] + (a.ptr[perm[t] + 1] - a.ptr[perm[t]]);
  auto out_col_t = at::empty({out_ptr[n]}, at::kLong);
  auto out_val_t = at::empty({out_ptr[n]}, at::kDouble);
  int64_t* out_col = out_col_t.data_ptr<int64_t>();
  double* out_val = out_val_t.data_ptr<double>();
  at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<int64_t, double>> entries;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i = perm[t];
      entries.clear();
      for (int64_t p = a.ptr[i]; p < a.ptr[i + 1]; ++p) entries.emplace_back(inverse[a.col[p]], scale[i] * a.val[p] * scale[a.col[p]]);
      std::sort(entries.begin(), entries.end());
      int64_t q = out_ptr[t];
      for (const auto& [c, v] : entries) out_col[q] = c, out_val[q] = v, ++q;
    }
  });
  return {out_ptr_t, out_col_t, out_val_t};
}

// Conjugate gradients on A x = b, preconditioned by (L L^T)^-1 for the factor
// L of ichol. Stops when the weighted residual norm sqrt(sum (w_i r_i)^2)
// reaches `tolerance` (w empty: unweighted), so that a caller who solves a
// scaled system can stop on the residual of the original one. Status: 0
// converged, 1 out of iterations, 2 broke down (p^T A p <= 0: A is not
// positive definite).
std::tuple<at::Tensor, int64_t, double, int64_t> ichol_pcg_cpu(const at::Tensor& a_indptr, const at::Tensor& a_indices,
                                                               const at::Tensor& a_values, const at::Tensor& l_indptr,
                                                               const at::Tensor& l_indices, const at::Tensor& l_values,
                                                               c10::IntArrayRef parts, const at::Tensor& b_in,
                                                               const at::Tensor& x0_in, const at::Tensor& weights_in,
                                                               double tolerance, int64_t maxiter) {
  const CsrInput in = csr_input("ichol_pcg", a_indptr, a_indices, a_values);
  const Csr a = in.view();
  const int64_t n = a.n;
  check_columns("ichol_pcg", a);
  const mattezoo::sparse::FactorView factor = mattezoo::sparse::factor_view("ichol_pcg", l_indptr, l_indices, l_values, parts);
  TORCH_CHECK(factor.n == n, "ichol_pcg: the factor has ", factor.n, " rows, the matrix ", n);
  TORCH_CHECK(b_in.dim() == 1 && b_in.numel() == n, "ichol_pcg: b must be 1-D with ", n, " entries");
  TORCH_CHECK(x0_in.numel() == 0 || (x0_in.dim() == 1 && x0_in.numel() == n), "ichol_pcg: x0 must be empty or 1-D with ", n, " entries");
  TORCH_CHECK(weights_in.numel() == 0 || (weights_in.dim() == 1 && weights_in.numel() == n),
              "ichol_pcg: weights must be empty or 1-D with ", n, " entries");
  TORCH_CHECK(maxiter >= 0, "ichol_pcg: maxiter must be >= 0");
  const auto b_t = b_in.to(at::kDouble).contiguous();
  const auto w_t = weights_in.to(at::kDouble).contiguous();
  const double* b = b_t.data_ptr<double>();
  const double* w = w_t.numel() ? w_t.data_ptr<double>() : nullptr;
  auto x_t = x0_in.numel() ? x0_in.to(at::kDouble).contiguous().clone() : at::zeros({n}, at::kDouble);
  double* x = x_t.data_ptr<double>();

  const bool parallel = n >= kParallelCgRows;
  std::vector<double> r(n), z(n), p(n), q(n);
  auto residual_norm = [&]() {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += (w ? w[i] * r[i] : r[i]) * (w ? w[i] * r[i] : r[i]);
    return std::sqrt(s);
  };
  if (x0_in.numel()) {
    matvec(a, x, q.data(), parallel);
    for (int64_t i = 0; i < n; ++i) r[i] = b[i] - q[i];
  } else {
    std::copy(b, b + n, r.begin());
  }
  double norm = residual_norm();
  if (norm <= tolerance) return {x_t, 0, norm, 0};
  std::copy(r.begin(), r.end(), z.begin());
  mattezoo::sparse::ichol_apply(factor, z.data(), parallel);
  std::copy(z.begin(), z.end(), p.begin());
  double rz = std::inner_product(r.begin(), r.end(), z.begin(), 0.0);
  for (int64_t iteration = 1; iteration <= maxiter; ++iteration) {
    matvec(a, p.data(), q.data(), parallel);
    const double pq = std::inner_product(p.begin(), p.end(), q.begin(), 0.0);
    if (!(pq > 0.0) || !std::isfinite(pq)) return {x_t, iteration, norm, 2};
    const double step = rz / pq;
    for (int64_t i = 0; i < n; ++i) x[i] += step * p[i], r[i] -= step * q[i];
    norm = residual_norm();
    if (norm <= tolerance) return {x_t, iteration, norm, 0};
    std::copy(r.begin(), r.end(), z.begin());
    mattezoo::sparse::ichol_apply(factor, z.data(), parallel);
    const double rz_new = std::inner_product(r.begin(), r.end(), z.begin(), 0.0);
    const double beta = rz_new / rz;
    for (int64_t i = 0; i < n; ++i) p[i] = z[i] + beta * p[i];
    rz = rz_new;
  }
  return {x_t, maxiter, norm, 1};
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("csr_matvec", &csr_matvec_cpu);
  m.impl("csr_permute_symmetric", &csr_permute_symmetric_cpu);
  m.impl("ichol_pcg", &ichol_pcg_cpu);
}
