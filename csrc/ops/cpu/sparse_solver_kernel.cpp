// CPU kernels of the sparse solver ops (schemas: csrc/ops/sparse_solver.cpp).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
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

at::Tensor csr_matvec_cpu(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& values, const at::Tensor& x_in) {
  const CsrInput in = csr_input("csr_matvec", indptr, indices, values);
  const Csr a = in.view();
  TORCH_CHECK(x_in.dim() == 1, "csr_matvec: x must be 1-D");
  const auto x = x_in.to(at::kDouble).contiguous();
  auto y = at::empty({a.n}, at::kDouble);
  const double* xs = x.data_ptr<double>();
  double* ys = y.data_ptr<double>();
  at::parallel_for(0, a.n, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double s = 0.0;
      for (int64_t p = a.ptr[i]; p < a.ptr[i + 1]; ++p) s += a.val[p] * xs[a.col[p]];
      ys[i] = s;
    }
  });
  return y;
}

// Left-looking threshold incomplete Cholesky, column by column. Column j of
// L starts as the lower part of column j of A (= row j, A is symmetric) in a
// dense work vector and receives -L_jk * L(:,k) from every earlier column k
// with L_jk != 0. Those columns are found through linked lists: column k sits
// in the list of the row of its next unused entry, so list j holds exactly
// the columns with an entry in row j (Jones & Plassmann 1995). Every computed
// L_ij is subtracted from the pending diagonal d_i, dropped or not, which
// keeps the factor closer to A's diagonal and the pivots positive.
std::tuple<at::Tensor, at::Tensor, at::Tensor, int64_t> ichol_cpu(const at::Tensor& indptr, const at::Tensor& indices,
                                                                  const at::Tensor& values, double drop_tolerance,
                                                                  double shift, int64_t max_nnz) {
  const CsrInput in = csr_input("ichol", indptr, indices, values);
  const Csr a = in.view();
  const int64_t n = a.n;
  std::vector<double> diag(n, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t p = a.ptr[j]; p < a.ptr[j + 1]; ++p) {
      TORCH_CHECK(a.col[p] >= 0 && a.col[p] < n, "ichol: column index ", a.col[p], " out of range");
      TORCH_CHECK(p == a.ptr[j] || a.col[p - 1] < a.col[p], "ichol: column indices of row ", j, " are not sorted and unique");
      if (a.col[p] == j) diag[j] = a.val[p] * (1.0 + shift);
    }
  }
  TORCH_CHECK(n < (int64_t{1} << 31), "ichol: more than 2^31 rows are not supported");
  std::vector<int64_t> l_ptr(n + 1, 0);
  std::vector<int32_t> l_row;
  std::vector<double> l_val;
  const int64_t guess = std::min<int64_t>(max_nnz, 4 * (a.ptr[n] + n));
  l_row.reserve(guess), l_val.reserve(guess);
  std::vector<int64_t> head(n, -1), link(n, -1), next_entry(n, 0);
  std::vector<double> work(n, 0.0);
  std::vector<char> used(n, 0);
  std::vector<int64_t> rows;
  int64_t status = -1;
  // Row indices of column j in increasing order. After RCM the rows of a
  // column lie in a narrow range, where scanning the marks beats sorting.
  auto sort_rows = [&]() {
    if (rows.empty()) return;
    const auto [lo, hi] = std::minmax_element(rows.begin(), rows.end());
    const int64_t first = *lo, last = *hi;
    if (last - first > 32 * static_cast<int64_t>(rows.size())) {
      std::sort(rows.begin(), rows.end());
      return;
    }
    rows.clear();
    for (int64_t i = first; i <= last; ++i)
      if (used[i]) rows.push_back(i);
  };
  for (int64_t j = 0; j < n && status == -1; ++j) {
    rows.clear();
    for (int64_t p = a.ptr[j]; p < a.ptr[j + 1]; ++p) {
      const int64_t i = a.col[p];
      if (i > j && a.val[p] != 0.0) {
        work[i] += a.val[p];
        if (!used[i]) used[i] = 1, rows.push_back(i);
      }
    }
    for (int64_t k = head[j]; k != -1;) {
      const int64_t following = link[k];
      int64_t p = next_entry[k];
      const double l_jk = l_val[p];
      ++p;
      if (p < l_ptr[k + 1]) {
        next_entry[k] = p;
        const int64_t i_next = l_row[p];
        link[k] = head[i_next], head[i_next] = k;  // k moves on to the list of its next row
        for (; p < l_ptr[k + 1]; ++p) {
          const int64_t i = l_row[p];
          work[i] -= l_val[p] * l_jk;
          if (!used[i]) used[i] = 1, rows.push_back(i);
        }
      }
      k = following;
    }
    if (!(diag[j] > 0.0) || !std::isfinite(diag[j])) {
      status = j;
      break;
    }
    if (static_cast<int64_t>(l_row.size()) + 1 + static_cast<int64_t>(rows.size()) > max_nnz) {
      status = -2;
      break;
    }
    const double l_jj = std::sqrt(diag[j]);
    l_row.push_back(static_cast<int32_t>(j)), l_val.push_back(l_jj);
    sort_rows();
    for (int64_t i : rows) {
      const double l_ij = work[i] / l_jj;
      diag[i] -= l_ij * l_ij;
      if (std::fabs(l_ij) > drop_tolerance) l_row.push_back(static_cast<int32_t>(i)), l_val.push_back(l_ij);
      work[i] = 0.0, used[i] = 0;
    }
    l_ptr[j + 1] = static_cast<int64_t>(l_row.size());
    if (l_ptr[j + 1] - l_ptr[j] > 1) {
      next_entry[j] = l_ptr[j] + 1;
      const int64_t i_first = l_row[l_ptr[j] + 1];
      link[j] = head[i_first], head[i_first] = j;
    }
  }
  if (status != -1) return {at::empty({0}, at::kLong), at::empty({0}, at::kInt), at::empty({0}, at::kFloat), status};
  // The factor is only a preconditioner: it is stored with int32 rows and
  // float32 values, which halves the memory traffic of every triangular solve
  // (the solves accumulate in float64, and CG itself stays in float64).
  auto l_ptr_t = at::empty({n + 1}, at::kLong);
  auto l_row_t = at::empty({static_cast<int64_t>(l_row.size())}, at::kInt);
  auto l_val_t = at::empty({static_cast<int64_t>(l_val.size())}, at::kFloat);
  std::copy(l_ptr.begin(), l_ptr.end(), l_ptr_t.data_ptr<int64_t>());
  std::copy(l_row.begin(), l_row.end(), l_row_t.data_ptr<int32_t>());
  std::transform(l_val.begin(), l_val.end(), l_val_t.data_ptr<float>(), [](double v) { return static_cast<float>(v); });
  return {l_ptr_t, l_row_t, l_val_t, -1};
}

// x = (L L^T)^-1 b with L from ichol: CSC, diagonal first in each column,
// int32 rows and float32 values.
at::Tensor ichol_solve_cpu(const at::Tensor& indptr_in, const at::Tensor& indices_in, const at::Tensor& values_in, const at::Tensor& b) {
  TORCH_CHECK(indptr_in.dim() == 1 && indptr_in.numel() >= 1, "ichol_solve: indptr must be 1-D with N+1 entries");
  TORCH_CHECK(indices_in.scalar_type() == at::kInt && values_in.scalar_type() == at::kFloat,
              "ichol_solve: expects the int32 indices and float32 values that ichol returns");
  const auto indptr = indptr_in.to(at::kLong).contiguous();
  const auto indices = indices_in.contiguous();
  const auto values = values_in.contiguous();
  const int64_t n = indptr.numel() - 1;
  const int64_t* ptr = indptr.data_ptr<int64_t>();
  const int32_t* row = indices.data_ptr<int32_t>();
  const float* val = values.data_ptr<float>();
  TORCH_CHECK(ptr[n] == indices.numel() && indices.numel() == values.numel(), "ichol_solve: indptr does not match the factor");
  TORCH_CHECK(b.dim() == 1 && b.numel() == n, "ichol_solve: b must be 1-D with ", n, " entries");
  auto x = b.to(at::kDouble).contiguous().clone();
  double* xs = x.data_ptr<double>();
  // Forward, L y = b: finish y_j, then push it down column j.
  for (int64_t j = 0; j < n; ++j) {
    const double yj = xs[j] / val[ptr[j]];
    xs[j] = yj;
    for (int64_t p = ptr[j] + 1; p < ptr[j + 1]; ++p) xs[row[p]] -= val[p] * yj;
  }
  // Backward, L^T x = y: row j of L^T is column j of L.
  for (int64_t j = n - 1; j >= 0; --j) {
    double s = xs[j];
    for (int64_t p = ptr[j] + 1; p < ptr[j + 1]; ++p) s -= val[p] * xs[row[p]];
    xs[j] = s / val[ptr[j]];
  }
  return x;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("csr_matvec", &csr_matvec_cpu);
  m.impl("ichol", &ichol_cpu);
  m.impl("ichol_solve", &ichol_solve_cpu);
}
