// CPU kernels of mattezoo::ichol and mattezoo::ichol_solve (schemas:
// csrc/ops/sparse_solver.cpp), and the factor solve the fused CG shares.
//
// Threshold incomplete Cholesky is the costliest step of every Laplacian
// solve and is serial by nature: column j needs every earlier column with an
// entry in row j. A one-level nested dissection makes it parallel. The caller
// orders the matrix as independent parts followed by a separator
// (mattezoo/classical/solver.py finds them in the RCM order), so each part is
// factored by its own thread; they only meet in the separator rows, whose
// pending pivots and column lists every thread keeps to itself until the
// separator columns are factored, serially, at the end. The triangular solves
// split the same way.
#include "ops/sparse_solver.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace mattezoo::sparse {

std::vector<int64_t> checked_parts(const char* op, c10::IntArrayRef parts, int64_t n) {
  TORCH_CHECK(parts.size() >= 2, op, ": parts must hold at least two bounds [0, ..., end], got ", parts);
  TORCH_CHECK(parts.front() == 0 && parts.back() <= n, op, ": parts must run from 0 to at most n = ", n, ", got ", parts);
  for (size_t q = 1; q < parts.size(); ++q) {
    TORCH_CHECK(parts[q - 1] <= parts[q], op, ": parts must be sorted, got ", parts);
  }
  return parts.vec();
}

FactorView factor_view(const char* op, const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& values,
                       c10::IntArrayRef parts) {
  TORCH_CHECK(indptr.dim() == 1 && indptr.numel() >= 1 && indptr.scalar_type() == at::kLong && indptr.is_contiguous(), op,
              ": the factor's indptr must be a contiguous 1-D int64 tensor with N+1 entries");
  TORCH_CHECK(indices.scalar_type() == at::kInt && values.scalar_type() == at::kFloat && indices.is_contiguous() &&
                  values.is_contiguous() && indices.dim() == 1 && values.numel() == indices.numel(),
              op, ": expects the contiguous int32 indices and float32 values that ichol returns");
  FactorView f;
  f.n = indptr.numel() - 1;
  f.ptr = indptr.data_ptr<int64_t>();
  f.row = indices.data_ptr<int32_t>();
  f.val = values.data_ptr<float>();
  TORCH_CHECK(f.ptr[0] == 0 && f.ptr[f.n] == indices.numel(), op, ": indptr does not match the factor");
  f.parts = checked_parts(op, parts, f.n);
  return f;
}

void ichol_apply(const FactorView& f, double* x, bool parallel) {
  const int64_t n = f.n, sep = f.separator_begin(), n_parts = static_cast<int64_t>(f.parts.size()) - 1;
  const int64_t* ptr = f.ptr;
  const int32_t* row = f.row;
  const float* val = f.val;
  // Forward, L y = b, column by column: finish y_j, then push it down column
  // j. Rows of the separator collect the pushes of each part separately.
  std::vector<double> pushed(n_parts * (n - sep), 0.0);
  auto for_each_part = [&](auto&& body) {
    if (parallel) {
      at::parallel_for(0, n_parts, 1, [&](int64_t q0, int64_t q1) {
        for (int64_t q = q0; q < q1; ++q) body(q);
      });
    } else {
      for (int64_t q = 0; q < n_parts; ++q) body(q);
    }
  };
  for_each_part([&](int64_t q) {
    double* to_separator = pushed.data() + q * (n - sep);  // entry i - sep for row i
    for (int64_t j = f.parts[q]; j < f.parts[q + 1]; ++j) {
      const double yj = x[j] / val[ptr[j]];
      x[j] = yj;
      int64_t p = ptr[j] + 1;
      for (; p < ptr[j + 1] && row[p] < sep; ++p) x[row[p]] -= val[p] * yj;
      for (; p < ptr[j + 1]; ++p) to_separator[row[p] - sep] -= val[p] * yj;
    }
  });
  for (int64_t q = 0; q < n_parts; ++q) {
    for (int64_t i = sep; i < n; ++i) x[i] += pushed[q * (n - sep) + i - sep];
  }
  for (int64_t j = sep; j < n; ++j) {
    const double yj = x[j] / val[ptr[j]];
    x[j] = yj;
    for (int64_t p = ptr[j] + 1; p < ptr[j + 1]; ++p) x[row[p]] -= val[p] * yj;
  }
  // Backward, L^T x = y: row j of L^T is column j of L. The separator first;
  // then each part reads only its own rows and the separator's.
  auto backward = [&](int64_t begin, int64_t end) {
    for (int64_t j = end - 1; j >= begin; --j) {
      double s = x[j];
      for (int64_t p = ptr[j] + 1; p < ptr[j + 1]; ++p) s -= val[p] * x[row[p]];
      x[j] = s / val[ptr[j]];
    }
  };
  backward(sep, n);
  for_each_part([&](int64_t q) { backward(f.parts[q], f.parts[q + 1]); });
}

}  // namespace mattezoo::sparse

namespace {

using mattezoo::sparse::checked_parts;
using mattezoo::sparse::factor_view;
using mattezoo::sparse::FactorView;

// A column-by-column factoriser over a range of columns, with its own factor
// storage and scratch. Shared state (pivots, column lists) is indexed by row
// or column, and a part only touches the rows and columns of its own range;
// rows at or past `shared_from` (the separator, while the parts run in
// parallel) get private pivot updates and column lists instead.
struct Worker {
  // The lower triangle of A row-wise (= column-wise, A is symmetric).
  const int64_t* a_ptr;
  const int64_t* a_col;
  const double* a_val;
  double drop_tolerance;
  int64_t max_nnz;
  // Shared, indexed by row or column.
  double* diag;        // pending pivot of each row
  int64_t* head;       // head[i]: first column k whose next unused entry is in row i
  int64_t* link;       // link[k]: the column after k in its list
  int64_t* next_entry; // next_entry[k]: storage position of column k's next unused entry
  int64_t* col_begin;  // storage position of each column's diagonal
  int64_t* col_end;    // and one past its last entry
  // Private.
  int64_t shared_from = 0;
  std::vector<int64_t> shared_head;
  std::vector<double> shared_diag;  // updates to the pivots of the shared rows, added afterwards
  std::vector<int32_t> l_row;
  std::vector<double> l_val;
  std::vector<double> work;
  std::vector<char> used;
  std::vector<int64_t> rows;
  int64_t status = -1;  // -1 ok, -2 too many entries, >= 0 the column of a failed pivot

  void start(int64_t n, int64_t shared_begin, int64_t reserve) {
    shared_from = shared_begin;
    shared_head.assign(n - shared_begin, -1);
    shared_diag.assign(n - shared_begin, 0.0);
    work.assign(n, 0.0);
    used.assign(n, 0);
    l_row.reserve(reserve), l_val.reserve(reserve);
  }

  int64_t& head_of(int64_t i) { return i < shared_from ? head[i] : shared_head[i - shared_from]; }
  double& diag_of(int64_t i) { return i < shared_from ? diag[i] : shared_diag[i - shared_from]; }

  // Row indices of the current column in increasing order, from the marks.
  void sort_rows() {
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
  }

  // work -= l_jk * L(:,k) below row j for every column k in list j, each k
  // moving on to the list of its next row. kMark also records the rows
  // touched (for columns whose rows are spread too widely to scan).
  template <bool kMark>
  void subtract_columns(int64_t j) {
    for (int64_t k = head[j]; k != -1;) {
      const int64_t following = link[k];
      int64_t p = next_entry[k];
      const double l_jk = l_val[p];
      const int64_t k_end = col_end[k];
      ++p;
      if (p < k_end) {
        next_entry[k] = p;
        int64_t& list = head_of(l_row[p]);
        link[k] = list, list = k;
        const int32_t* r = l_row.data();
        const double* v = l_val.data();
        double* w = work.data();
        for (; p < k_end; ++p) {
          w[r[p]] -= v[p] * l_jk;
          if constexpr (kMark) {
            if (!used[r[p]]) used[r[p]] = 1, rows.push_back(r[p]);
          }
        }
      }
      k = following;
    }
  }

  // Left-looking threshold incomplete Cholesky of columns [begin, end). Column
  // j starts as the lower part of column j of A in the dense `work` vector and
  // receives -L_jk * L(:,k) from every earlier column k with L_jk != 0. Those
  // columns are found through linked lists: column k sits in the list of the
  // row of its next unused entry, so list j holds exactly the columns with an
  // entry in row j (Jones & Plassmann 1995). Every computed L_ij is subtracted
  // from the pending pivot d_i, dropped or not, which keeps the factor closer
  // to A's diagonal and the pivots positive. Entries of A in rows below
  // `row_limit` and outside [begin, end) would break the independence of the
  // parts; they are reported as an error.
  //
  // In a banded order the rows of a column lie in a short range (j, last]:
  // then the updates run without bookkeeping and the nonzeros are found by
  // scanning that range, which costs far less than marking every update.
  void factor(int64_t begin, int64_t end, int64_t row_limit) {
    for (int64_t j = begin; j < end; ++j) {
      // The extent of column j: its last row and an upper bound of its entries.
      int64_t last = j, bound = 0;
      for (int64_t p = a_ptr[j]; p < a_ptr[j + 1]; ++p) {
        const int64_t i = a_col[p];
        if (i > j && a_val[p] != 0.0) {
          TORCH_CHECK(i < end || i >= row_limit, "ichol: row ", j, " of the matrix has an entry in column ", i,
                      ", outside its part [", begin, ", ", end, ") and the separator; the parts are not independent");
          last = std::max(last, i), ++bound;
        }
      }
      for (int64_t k = head[j]; k != -1; k = link[k]) {
        if (next_entry[k] + 1 < col_end[k]) last = std::max<int64_t>(last, l_row[col_end[k] - 1]), bound += col_end[k] - next_entry[k] - 1;
      }
      const bool scan = last - j <= 4 * bound + 64;
      rows.clear();
      for (int64_t p = a_ptr[j]; p < a_ptr[j + 1]; ++p) {
        const int64_t i = a_col[p];
        if (i > j && a_val[p] != 0.0) {
          work[i] += a_val[p];
          if (!scan && !used[i]) used[i] = 1, rows.push_back(i);
        }
      }
      if (scan) {
        subtract_columns<false>(j);
        for (int64_t i = j + 1; i <= last; ++i)
          if (work[i] != 0.0) rows.push_back(i);
      } else {
        subtract_columns<true>(j);
        sort_rows();
        for (int64_t i : rows) used[i] = 0;
      }
      if (!(diag[j] > 0.0) || !std::isfinite(diag[j])) {
        status = j;
        return;
      }
      if (static_cast<int64_t>(l_row.size()) + 1 + static_cast<int64_t>(rows.size()) > max_nnz) {
        status = -2;
        return;
      }
      const double l_jj = std::sqrt(diag[j]);
      col_begin[j] = static_cast<int64_t>(l_row.size());
      l_row.push_back(static_cast<int32_t>(j)), l_val.push_back(l_jj);
      for (int64_t i : rows) {
        const double l_ij = work[i] / l_jj;
        diag_of(i) -= l_ij * l_ij;
        if (std::fabs(l_ij) > drop_tolerance) l_row.push_back(static_cast<int32_t>(i)), l_val.push_back(l_ij);
        work[i] = 0.0;
      }
      col_end[j] = static_cast<int64_t>(l_row.size());
      if (col_end[j] - col_begin[j] > 1) {
        next_entry[j] = col_begin[j] + 1;
        int64_t& list = head_of(l_row[col_begin[j] + 1]);
        link[j] = list, list = j;
      }
    }
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, int64_t> ichol_cpu(const at::Tensor& indptr_in, const at::Tensor& indices_in,
                                                                  const at::Tensor& values_in, double drop_tolerance,
                                                                  double shift, int64_t max_nnz, c10::IntArrayRef parts_in) {
  TORCH_CHECK(indptr_in.dim() == 1 && indptr_in.numel() >= 1, "ichol: indptr must be 1-D with N+1 entries");
  TORCH_CHECK(indices_in.dim() == 1 && values_in.dim() == 1 && indices_in.numel() == values_in.numel(),
              "ichol: indices and values must be 1-D of equal length");
  const auto indptr = indptr_in.to(at::kLong).contiguous();
  const auto indices = indices_in.to(at::kLong).contiguous();
  const auto values = values_in.to(at::kDouble).contiguous();
  const int64_t n = indptr.numel() - 1;
  const int64_t* a_ptr = indptr.data_ptr<int64_t>();
  const int64_t* a_col = indices.data_ptr<int64_t>();
  const double* a_val = values.data_ptr<double>();
  TORCH_CHECK(a_ptr[0] == 0 && a_ptr[n] == indices.numel(), "ichol: indptr does not match indices");
  TORCH_CHECK(n < (int64_t{1} << 31), "ichol: more than 2^31 rows are not supported");
  const std::vector<int64_t> parts = checked_parts("ichol", parts_in, n);
  const int64_t n_parts = static_cast<int64_t>(parts.size()) - 1, sep = parts.back();

  std::vector<double> diag(n, 0.0);
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t p = a_ptr[j]; p < a_ptr[j + 1]; ++p) {
        TORCH_CHECK(a_col[p] >= 0 && a_col[p] < n, "ichol: column index ", a_col[p], " out of range");
        TORCH_CHECK(p == a_ptr[j] || a_col[p - 1] < a_col[p], "ichol: column indices of row ", j, " are not sorted and unique");
        if (a_col[p] == j) diag[j] = a_val[p] * (1.0 + shift);
      }
    }
  });
  std::vector<int64_t> head(n, -1), link(n, -1), next_entry(n, 0), col_begin(n + 1, 0), col_end(n, 0);
  std::vector<Worker> workers(n_parts);
  const int64_t reserve = std::min<int64_t>(max_nnz, 4 * (a_ptr[n] + n)) / n_parts;
  for (Worker& w : workers) {
    w = Worker{a_ptr, a_col, a_val, drop_tolerance, max_nnz, diag.data(), head.data(), link.data(), next_entry.data(),
               col_begin.data(), col_end.data()};
  }
  // The parts in parallel, each with its own storage; the separator rows are private to each.
  at::parallel_for(0, n_parts, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      workers[q].start(n, sep, reserve);
      workers[q].factor(parts[q], parts[q + 1], sep);
    }
  });
  for (const Worker& w : workers) {
    if (w.status != -1) return {at::empty({0}, at::kLong), at::empty({0}, at::kInt), at::empty({0}, at::kFloat), w.status};
  }
  // Join: the parts' storage back to back (shifting their positions), the
  // separator's pivot updates and column lists merged into the shared ones.
  Worker& main = workers[0];
  for (int64_t q = 1; q < n_parts; ++q) {
    Worker& w = workers[q];
    const int64_t offset = static_cast<int64_t>(main.l_row.size());
    for (int64_t k = parts[q]; k < parts[q + 1]; ++k) col_begin[k] += offset, col_end[k] += offset, next_entry[k] += offset;
    main.l_row.insert(main.l_row.end(), w.l_row.begin(), w.l_row.end());
    main.l_val.insert(main.l_val.end(), w.l_val.begin(), w.l_val.end());
    w.l_row = {}, w.l_val = {};
  }
  for (Worker& w : workers) {
    for (int64_t i = sep; i < n; ++i) {
      diag[i] += w.shared_diag[i - sep];
      for (int64_t k = w.shared_head[i - sep]; k != -1;) {
        const int64_t following = link[k];
        link[k] = head[i], head[i] = k;
        k = following;
      }
    }
  }
  // The separator, serially, with nothing private left.
  main.shared_from = n;
  main.factor(sep, n, n);
  if (main.status != -1) return {at::empty({0}, at::kLong), at::empty({0}, at::kInt), at::empty({0}, at::kFloat), main.status};
  col_begin[n] = static_cast<int64_t>(main.l_row.size());
  // The factor is only a preconditioner: it is stored with int32 rows and
  // float32 values, which halves the memory traffic of every triangular solve
  // (the solves accumulate in float64, and CG itself stays in float64).
  auto l_ptr_t = at::empty({n + 1}, at::kLong);
  auto l_row_t = at::empty({static_cast<int64_t>(main.l_row.size())}, at::kInt);
  auto l_val_t = at::empty({static_cast<int64_t>(main.l_val.size())}, at::kFloat);
  std::copy(col_begin.begin(), col_begin.end(), l_ptr_t.data_ptr<int64_t>());
  std::copy(main.l_row.begin(), main.l_row.end(), l_row_t.data_ptr<int32_t>());
  std::transform(main.l_val.begin(), main.l_val.end(), l_val_t.data_ptr<float>(), [](double v) { return static_cast<float>(v); });
  return {l_ptr_t, l_row_t, l_val_t, -1};
}

at::Tensor ichol_solve_cpu(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& values, c10::IntArrayRef parts,
                           const at::Tensor& b) {
  const FactorView factor = factor_view("ichol_solve", indptr, indices, values, parts);
  TORCH_CHECK(b.dim() == 1 && b.numel() == factor.n, "ichol_solve: b must be 1-D with ", factor.n, " entries");
  auto x = b.to(at::kDouble).contiguous().clone();
  mattezoo::sparse::ichol_apply(factor, x.data_ptr<double>());
  return x;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("ichol", &ichol_cpu);
  m.impl("ichol_solve", &ichol_solve_cpu);
}
