// CPU kernels of mattezoo::cf_laplacian_system and mattezoo::knn_laplacian_system
// (schemas and the shared contract: csrc/ops/matting_laplacian.cpp).
//
// Both kernels assemble only the rows of the unknown pixels, in two parallel
// passes over those rows: the first counts each row's entries (so indptr is a
// prefix sum and no row needs a lock), the second writes them. Columns come
// out sorted, as scipy's CSR and the incomplete Cholesky kernel expect.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

namespace {

using System = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Raster index of every unknown pixel among the unknowns, -1 for known ones.
std::vector<int64_t> unknown_numbering(const bool* unknown, int64_t n, int64_t* count) {
  std::vector<int64_t> index(n, -1);
  int64_t next = 0;
  for (int64_t p = 0; p < n; ++p) {
    if (unknown[p]) index[p] = next++;
  }
  *count = next;
  return index;
}

at::Tensor prefix_sum(const std::vector<int64_t>& counts) {
  auto indptr = at::empty({static_cast<int64_t>(counts.size()) + 1}, at::kLong);
  int64_t* out = indptr.data_ptr<int64_t>();
  out[0] = 0;
  for (size_t i = 0; i < counts.size(); ++i) out[i + 1] = out[i] + counts[i];
  return indptr;
}

// ---------------------------------------------------------------------------
// Closed-form matting Laplacian (Levin, Lischinski, Weiss 2008, eq. 12):
//   L_ij = sum_{k | (i,j) in w_k} [ delta_ij - (1 + (I_i - mu_k)^T
//          (Sigma_k + eps/|w_k| I_3)^-1 (I_j - mu_k)) / |w_k| ]
// over the (2r+1)^2 windows w_k that lie fully inside the image.
// ---------------------------------------------------------------------------

// Per window: the colour mean and the inverse regularised covariance
// (symmetric, 6 values: 00 01 02 11 12 22).
struct WindowStats {
  double mean[3];
  double inv[6];
};

void window_stats(const double* img, int64_t width, int64_t cy, int64_t cx, int64_t r, double epsilon, WindowStats* out) {
  const int64_t size = 2 * r + 1;
  const double area = static_cast<double>(size * size);
  double sum[3] = {0, 0, 0};
  double sq[6] = {0, 0, 0, 0, 0, 0};
  for (int64_t y = cy - r; y <= cy + r; ++y) {
    const double* row = img + (y * width + cx - r) * 3;
    for (int64_t x = 0; x < size; ++x) {
      const double c0 = row[3 * x], c1 = row[3 * x + 1], c2 = row[3 * x + 2];
      sum[0] += c0, sum[1] += c1, sum[2] += c2;
      sq[0] += c0 * c0, sq[1] += c0 * c1, sq[2] += c0 * c2;
      sq[3] += c1 * c1, sq[4] += c1 * c2, sq[5] += c2 * c2;
    }
  }
  const double m0 = sum[0] / area, m1 = sum[1] / area, m2 = sum[2] / area;
  // Covariance from raw moments; eps/|w| on the diagonal as in the paper.
  const double reg = epsilon / area;
  const double a00 = sq[0] / area - m0 * m0 + reg, a01 = sq[1] / area - m0 * m1, a02 = sq[2] / area - m0 * m2;
  const double a11 = sq[3] / area - m1 * m1 + reg, a12 = sq[4] / area - m1 * m2;
  const double a22 = sq[5] / area - m2 * m2 + reg;
  // Inverse through the adjugate; the matrix is positive definite (reg > 0).
  const double c00 = a11 * a22 - a12 * a12, c01 = a02 * a12 - a01 * a22, c02 = a01 * a12 - a02 * a11;
  const double c11 = a00 * a22 - a02 * a02, c12 = a01 * a02 - a00 * a12, c22 = a00 * a11 - a01 * a01;
  const double inv_det = 1.0 / (a00 * c00 + a01 * c01 + a02 * c02);
  out->mean[0] = m0, out->mean[1] = m1, out->mean[2] = m2;
  out->inv[0] = c00 * inv_det, out->inv[1] = c01 * inv_det, out->inv[2] = c02 * inv_det;
  out->inv[3] = c11 * inv_det, out->inv[4] = c12 * inv_det, out->inv[5] = c22 * inv_det;
}

System cf_laplacian_system_cpu(const at::Tensor& image_in, const at::Tensor& unknown_in, const at::Tensor& known_alpha_in,
                               double epsilon, int64_t radius) {
  TORCH_CHECK(image_in.dim() == 3 && image_in.size(2) == 3, "cf_laplacian_system: image must be [H,W,3], got ", image_in.sizes());
  TORCH_CHECK(unknown_in.sizes() == image_in.sizes().slice(0, 2), "cf_laplacian_system: unknown must be [H,W]");
  TORCH_CHECK(known_alpha_in.sizes() == image_in.sizes().slice(0, 2), "cf_laplacian_system: known_alpha must be [H,W]");
  TORCH_CHECK(radius >= 1, "cf_laplacian_system: radius must be >= 1, got ", radius);
  TORCH_CHECK(epsilon > 0, "cf_laplacian_system: epsilon must be > 0, got ", epsilon);
  const auto image = image_in.to(at::kDouble).contiguous();
  const auto unknown = unknown_in.to(at::kBool).contiguous();
  const auto known_alpha = known_alpha_in.to(at::kDouble).contiguous();
  const int64_t height = image.size(0), width = image.size(1), r = radius;
  const int64_t size = 2 * r + 1, span = 4 * r + 1;
  TORCH_CHECK(height >= size && width >= size, "cf_laplacian_system: image ", height, "x", width,
              " is smaller than one ", size, "x", size, " window");
  const double area = static_cast<double>(size * size);
  const double* img = image.data_ptr<double>();
  const bool* unk = unknown.data_ptr<bool>();
  const double* alpha = known_alpha.data_ptr<double>();

  int64_t n_unknown = 0;
  const std::vector<int64_t> index = unknown_numbering(unk, height * width, &n_unknown);
  std::vector<int64_t> pixels;
  pixels.reserve(n_unknown);
  for (int64_t p = 0; p < height * width; ++p) {
    if (unk[p]) pixels.push_back(p);
  }

  // Window statistics for every window that holds an unknown pixel (the only
  // ones that reach an unknown row). Windows are indexed by their centre. The
  // array is left uninitialised: only the entries written here are read, and
  // zeroing all H*W of them (35 MB at 800x600) cost more than computing them.
  std::unique_ptr<WindowStats[]> stats(new WindowStats[height * width]);
  at::parallel_for(r, height - r, 8, [&](int64_t y0, int64_t y1) {
    for (int64_t cy = y0; cy < y1; ++cy) {
      for (int64_t cx = r; cx < width - r; ++cx) {
        bool touches_unknown = false;
        for (int64_t y = cy - r; y <= cy + r && !touches_unknown; ++y)
          for (int64_t x = cx - r; x <= cx + r; ++x)
            if (unk[y * width + x]) { touches_unknown = true; break; }
        if (touches_unknown) window_stats(img, width, cy, cx, r, epsilon, &stats[cy * width + cx]);
      }
    }
  });

  // Pixels i and j share a window iff some valid centre lies within r of both.
  auto centre_range = [&](int64_t a, int64_t b, int64_t extent, int64_t* lo, int64_t* hi) {
    *lo = std::max(std::max(a, b) - r, r);
    *hi = std::min(std::min(a, b) + r, extent - 1 - r);
    return *lo <= *hi;
  };

  std::vector<int64_t> counts(n_unknown);
  at::parallel_for(0, n_unknown, 256, [&](int64_t begin, int64_t end) {
    int64_t lo, hi;
    for (int64_t u = begin; u < end; ++u) {
      const int64_t yi = pixels[u] / width, xi = pixels[u] % width;
      int64_t n = 0;
      for (int64_t yj = std::max<int64_t>(yi - 2 * r, 0); yj <= std::min(yi + 2 * r, height - 1); ++yj) {
        if (!centre_range(yi, yj, height, &lo, &hi)) continue;
        for (int64_t xj = std::max<int64_t>(xi - 2 * r, 0); xj <= std::min(xi + 2 * r, width - 1); ++xj)
          if (unk[yj * width + xj] && centre_range(xi, xj, width, &lo, &hi)) ++n;
      }
      counts[u] = n;
    }
  });
  auto indptr = prefix_sum(counts);
  const int64_t* ptr = indptr.data_ptr<int64_t>();
  const int64_t nnz = ptr[n_unknown];
  auto indices = at::empty({nnz}, at::kLong);
  auto values = at::empty({nnz}, at::kDouble);
  auto rhs = at::zeros({n_unknown}, at::kDouble);
  int64_t* col = indices.data_ptr<int64_t>();
  double* val = values.data_ptr<double>();
  double* b = rhs.data_ptr<double>();

  at::parallel_for(0, n_unknown, 256, [&](int64_t begin, int64_t end) {
    std::vector<double> acc(span * span);
    int64_t ylo, yhi, xlo, xhi;
    for (int64_t u = begin; u < end; ++u) {
      const int64_t yi = pixels[u] / width, xi = pixels[u] % width;
      std::fill(acc.begin(), acc.end(), 0.0);
      const double* ci = img + pixels[u] * 3;
      // Every window containing i: centres within r of i.
      for (int64_t cy = std::max(yi - r, r); cy <= std::min(yi + r, height - 1 - r); ++cy) {
        for (int64_t cx = std::max(xi - r, r); cx <= std::min(xi + r, width - 1 - r); ++cx) {
          const WindowStats& s = stats[cy * width + cx];
          const double d0 = ci[0] - s.mean[0], d1 = ci[1] - s.mean[1], d2 = ci[2] - s.mean[2];
          const double v0 = s.inv[0] * d0 + s.inv[1] * d1 + s.inv[2] * d2;
          const double v1 = s.inv[1] * d0 + s.inv[3] * d1 + s.inv[4] * d2;
          const double v2 = s.inv[2] * d0 + s.inv[4] * d1 + s.inv[5] * d2;
          for (int64_t yj = cy - r; yj <= cy + r; ++yj) {
            double* a = acc.data() + (yj - yi + 2 * r) * span + (cx - r - xi + 2 * r);
            const double* cj = img + (yj * width + cx - r) * 3;
            for (int64_t x = 0; x < size; ++x) {
              const double dot = v0 * (cj[3 * x] - s.mean[0]) + v1 * (cj[3 * x + 1] - s.mean[1]) + v2 * (cj[3 * x + 2] - s.mean[2]);
              a[x] -= (1.0 + dot) / area;
            }
          }
          acc[2 * r * span + 2 * r] += 1.0;  // delta_ij
        }
      }
      int64_t k = ptr[u];
      double row_rhs = 0.0;
      for (int64_t yj = std::max<int64_t>(yi - 2 * r, 0); yj <= std::min(yi + 2 * r, height - 1); ++yj) {
        if (!centre_range(yi, yj, height, &ylo, &yhi)) continue;
        for (int64_t xj = std::max<int64_t>(xi - 2 * r, 0); xj <= std::min(xi + 2 * r, width - 1); ++xj) {
          if (!centre_range(xi, xj, width, &xlo, &xhi)) continue;
          const int64_t j = yj * width + xj;
          const double l_ij = acc[(yj - yi + 2 * r) * span + (xj - xi + 2 * r)];
          if (unk[j]) {
            col[k] = index[j];
            val[k] = l_ij;
            ++k;
          } else {
            row_rhs -= l_ij * alpha[j];
          }
        }
      }
      b[u] = row_rhs;
    }
  });
  return {indptr, indices, values, rhs};
}

// ---------------------------------------------------------------------------
// KNN matting Laplacian (Chen, Li, Tang 2013): W = A + A^T where A_ij is the
// kernel value of j among i's nearest neighbours, D = diag(W 1), L = D - W.
// Self pairs are skipped: they would add the same amount to D and W.
// ---------------------------------------------------------------------------

System knn_laplacian_system_cpu(const at::Tensor& neighbors_in, const at::Tensor& weights_in, const at::Tensor& unknown_in,
                                const at::Tensor& known_alpha_in) {
  TORCH_CHECK(neighbors_in.dim() == 2, "knn_laplacian_system: neighbors must be [N,K], got ", neighbors_in.sizes());
  const int64_t n = neighbors_in.size(0), k = neighbors_in.size(1);
  const bool weighted = weights_in.numel() > 0;
  TORCH_CHECK(!weighted || weights_in.sizes() == neighbors_in.sizes(), "knn_laplacian_system: weights must be empty or [N,K]");
  TORCH_CHECK(unknown_in.numel() == n && known_alpha_in.numel() == n, "knn_laplacian_system: unknown and known_alpha need N entries");
  const auto neighbors = neighbors_in.to(at::kLong).contiguous();
  const auto weights = weighted ? weights_in.to(at::kDouble).contiguous() : weights_in;
  const auto unknown = unknown_in.to(at::kBool).contiguous().view({n});
  const auto known_alpha = known_alpha_in.to(at::kDouble).contiguous().view({n});
  const int64_t* nb = neighbors.data_ptr<int64_t>();
  const double* wt = weighted ? weights.data_ptr<double>() : nullptr;
  const bool* unk = unknown.data_ptr<bool>();
  const double* alpha = known_alpha.data_ptr<double>();
  for (int64_t e = 0; e < n * k; ++e) {
    TORCH_CHECK(nb[e] >= 0 && nb[e] < n, "knn_laplacian_system: neighbour index ", nb[e], " out of range [0, ", n, ")");
  }

  // Reverse adjacency (who lists i as a neighbour), by counting sort.
  std::vector<int64_t> rev_ptr(n + 1, 0);
  for (int64_t e = 0; e < n * k; ++e) {
    if (nb[e] != e / k) ++rev_ptr[nb[e] + 1];
  }
  for (int64_t i = 0; i < n; ++i) rev_ptr[i + 1] += rev_ptr[i];
  std::vector<int64_t> rev_edge(rev_ptr[n]);
  {
    std::vector<int64_t> fill(rev_ptr.begin(), rev_ptr.end() - 1);
    for (int64_t e = 0; e < n * k; ++e) {
      if (nb[e] != e / k) rev_edge[fill[nb[e]]++] = e;  // edge e = (e / k) -> nb[e]
    }
  }

  int64_t n_unknown = 0;
  const std::vector<int64_t> index = unknown_numbering(unk, n, &n_unknown);
  std::vector<int64_t> pixels;
  pixels.reserve(n_unknown);
  for (int64_t p = 0; p < n; ++p) {
    if (unk[p]) pixels.push_back(p);
  }

  // Visit each (i, j, w) pair of row i of W once per edge, in both directions.
  auto for_each_edge = [&](int64_t i, auto&& visit) {
    for (int64_t t = 0; t < k; ++t) {
      const int64_t j = nb[i * k + t];
      if (j != i) visit(j, wt ? wt[i * k + t] : 1.0);
    }
    for (int64_t q = rev_ptr[i]; q < rev_ptr[i + 1]; ++q) {
      const int64_t e = rev_edge[q];
      visit(e / k, wt ? wt[e] : 1.0);
    }
  };

  std::vector<int64_t> counts(n_unknown);
  at::parallel_for(0, n_unknown, 1024, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> seen(n, -1);  // row that last touched column j
    for (int64_t u = begin; u < end; ++u) {
      const int64_t i = pixels[u];
      int64_t c = 1;  // the diagonal
      for_each_edge(i, [&](int64_t j, double) {
        if (unk[j] && seen[j] != i) seen[j] = i, ++c;
      });
      counts[u] = c;
    }
  });
  auto indptr = prefix_sum(counts);
  const int64_t* ptr = indptr.data_ptr<int64_t>();
  auto indices = at::empty({ptr[n_unknown]}, at::kLong);
  auto values = at::empty({ptr[n_unknown]}, at::kDouble);
  auto rhs = at::zeros({n_unknown}, at::kDouble);
  int64_t* col = indices.data_ptr<int64_t>();
  double* val = values.data_ptr<double>();
  double* b = rhs.data_ptr<double>();

  at::parallel_for(0, n_unknown, 1024, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> slot(n, -1);  // position of column j in the row being built
    std::vector<std::pair<int64_t, double>> row;
    for (int64_t u = begin; u < end; ++u) {
      const int64_t i = pixels[u];
      row.clear();
      row.emplace_back(u, 0.0);
      slot[u] = -1;
      double degree = 0.0, row_rhs = 0.0;
      for_each_edge(i, [&](int64_t j, double w) {
        degree += w;
        if (!unk[j]) {
          row_rhs += w * alpha[j];  // -L_ij alpha_j with L_ij = -w
          return;
        }
        const int64_t cj = index[j];
        if (slot[cj] < 0) {
          slot[cj] = static_cast<int64_t>(row.size());
          row.emplace_back(cj, -w);
        } else {
          row[slot[cj]].second -= w;
        }
      });
      row[0].second = degree;
      for (const auto& entry : row) slot[entry.first] = -1;
      std::sort(row.begin(), row.end());
      int64_t p = ptr[u];
      for (const auto& entry : row) col[p] = entry.first, val[p] = entry.second, ++p;
      b[u] = row_rhs;
    }
  });
  return {indptr, indices, values, rhs};
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("cf_laplacian_system", &cf_laplacian_system_cpu);
  m.impl("knn_laplacian_system", &knn_laplacian_system_cpu);
}
