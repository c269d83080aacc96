// CPU kernel of comprehensive sampling's pair selection (Shahrian et al.,
// CVPR 2013). Schema, conventions and the objective:
// csrc/ops/comprehensive_sampling.cpp.
//
// Every unknown pixel looks for the pair of candidate clusters of its
// foreground and background level (up to a few hundred each) of largest
// objective, visiting candidates nearest first and stopping where the spatial
// term alone rules out beating the best pair found (exact: the result is that
// of trying every pair). The objective is a product of
// exponentials and a power, so the kernel compares its logarithm,
//   log O = -e_k color_scale dist - e_s (d_F / D_F + d_B / D_B) + e_c log C,
// which cannot underflow (a plain product reaches 1e-300 for far pairs and
// would tie at 0). The colour-statistics factor depends only on the pair, so
// e_c log C is tabulated once per level pair that some pixel uses. Pixels are
// independent and run in parallel.
//
// The NumPy fallback (mattezoo/classical/comprehensive.py, _select_reference)
// evaluates the same expressions in the same order; keep the two in step.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "sampling_matting_kernel.h"

namespace {

using mattezoo_sampling::check_image;
using mattezoo_sampling::check_indices;
using mattezoo_sampling::check_vector;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;

// One side's stacked candidates (see the schema).
struct Candidates {
  const int64_t* offsets;
  int64_t levels;
  const double* mean;
  const double* sd;
  const double* pos;
};

Candidates check_candidates(const at::Tensor& offsets, const at::Tensor& mean, const at::Tensor& sd,
                            const at::Tensor& pos, const char* side) {
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 2 && offsets.scalar_type() == at::kLong &&
                  offsets.is_contiguous(),
              side, "_offsets must be a contiguous [L+1] int64 tensor with L >= 1, got ", offsets.sizes(), " ",
              offsets.scalar_type());
  const int64_t levels = offsets.size(0) - 1;
  const int64_t* off = offsets.data_ptr<int64_t>();
  TORCH_CHECK(off[0] == 0, side, "_offsets must start at 0, got ", off[0]);
  for (int64_t l = 0; l < levels; ++l)
    TORCH_CHECK(off[l + 1] >= off[l], side, "_offsets must be non-decreasing (level ", l, ")");
  const int64_t k = off[levels];
  for (const auto& [t, cols, name] : {std::tuple<const at::Tensor&, int64_t, const char*>{mean, 3, "mean"},
                                      {sd, 3, "std"}, {pos, 2, "pos"}}) {
    TORCH_CHECK(t.dim() == 2 && t.size(0) == k && t.size(1) == cols && t.scalar_type() == at::kDouble &&
                    t.is_contiguous(),
                side, "_", name, " must be a contiguous [", k, ",", cols, "] float64 tensor, got ", t.sizes(), " ",
                t.scalar_type());
  }
  return Candidates{off, levels, mean.data_ptr<double>(), sd.data_ptr<double>(), pos.data_ptr<double>()};
}

// e_c log C for every pair of foreground level lf and background level lb,
// row-major over (foreground candidate, background candidate).
std::vector<double> color_statistics(const Candidates& f, const Candidates& b, int64_t lf, int64_t lb, double e_c,
                                     double std_floor) {
  const int64_t f0 = f.offsets[lf], kf = f.offsets[lf + 1] - f0;
  const int64_t b0 = b.offsets[lb], kb = b.offsets[lb + 1] - b0;
  std::vector<double> d(static_cast<size_t>(kf * kb), 0.0);
  double dmax = 0.0;
  for (int64_t i = 0; i < kf; ++i)
    for (int64_t j = 0; j < kb; ++j) {
      const double* mf = f.mean + 3 * (f0 + i);
      const double* sf = f.sd + 3 * (f0 + i);
      const double* mb = b.mean + 3 * (b0 + j);
      const double* sb = b.sd + 3 * (b0 + j);
      double sum = 0.0;
      for (int c = 0; c < 3; ++c) {
        const double pooled = std::max(std::sqrt((sf[c] * sf[c] + sb[c] * sb[c]) * 0.5), std_floor);
        sum += std::fabs(mf[c] - mb[c]) / pooled;
      }
      const double v = sum / 3.0;
      d[i * kb + j] = v;
      dmax = std::max(dmax, v);
    }
  for (double& v : d) {
    if (e_c == 0.0)
      v = 0.0;  // C^0 = 1, whatever C is
    else
      v = (dmax > 0.0 && v > 0.0) ? e_c * std::log(v / dmax) : kNegInf;
  }
  return d;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> comprehensive_sampling_select_cpu(
    const at::Tensor& image, const at::Tensor& pixels, const at::Tensor& fg_level, const at::Tensor& bg_level,
    const at::Tensor& fg_offsets, const at::Tensor& fg_mean, const at::Tensor& fg_std, const at::Tensor& fg_pos,
    const at::Tensor& bg_offsets, const at::Tensor& bg_mean, const at::Tensor& bg_std, const at::Tensor& bg_pos,
    double e_k, double e_s, double e_c, double color_scale, double tolerance, double std_floor, int64_t min_valid) {
  check_image(image);
  const int64_t width = image.size(1), hw = image.size(0) * width, n = pixels.size(0);
  check_vector(pixels, n, at::kLong, "pixels");
  check_vector(fg_level, n, at::kLong, "fg_level");
  check_vector(bg_level, n, at::kLong, "bg_level");
  check_indices(pixels.data_ptr<int64_t>(), n, hw, false, "pixels");
  const Candidates f = check_candidates(fg_offsets, fg_mean, fg_std, fg_pos, "fg");
  const Candidates b = check_candidates(bg_offsets, bg_mean, bg_std, bg_pos, "bg");
  check_indices(fg_level.data_ptr<int64_t>(), n, f.levels, false, "fg_level");
  check_indices(bg_level.data_ptr<int64_t>(), n, b.levels, false, "bg_level");
  TORCH_CHECK(e_k >= 0 && e_s >= 0 && e_c >= 0 && color_scale > 0 && tolerance >= 0 && std_floor > 0 && min_valid >= 1,
              "comprehensive_sampling_select: exponents and tolerance must be >= 0, color_scale and std_floor > 0, "
              "min_valid >= 1");

  const int64_t* pix = pixels.data_ptr<int64_t>();
  const int64_t* lfp = fg_level.data_ptr<int64_t>();
  const int64_t* lbp = bg_level.data_ptr<int64_t>();
  const double* img = image.data_ptr<double>();

  // Tabulate the colour-statistics term of the level pairs in use.
  std::vector<std::vector<double>> table(static_cast<size_t>(f.levels * b.levels));
  std::vector<char> used(table.size(), 0);
  for (int64_t i = 0; i < n; ++i) used[lfp[i] * b.levels + lbp[i]] = 1;
  for (int64_t lf = 0; lf < f.levels; ++lf)
    for (int64_t lb = 0; lb < b.levels; ++lb)
      if (used[lf * b.levels + lb]) table[lf * b.levels + lb] = color_statistics(f, b, lf, lb, e_c, std_floor);

  auto fg_choice = at::empty({n}, at::kLong), bg_choice = at::empty({n}, at::kLong);
  auto alpha = at::empty({n}, at::kDouble), objective = at::empty({n}, at::kDouble);
  int64_t* cf = fg_choice.data_ptr<int64_t>();
  int64_t* cb = bg_choice.data_ptr<int64_t>();
  double* ca = alpha.data_ptr<double>();
  double* co = objective.data_ptr<double>();

  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    std::vector<double> dist_f, dist_b;
    std::vector<int64_t> order_f, order_b;
    for (int64_t p = begin; p < end; ++p) {
      const int64_t lf = lfp[p], lb = lbp[p];
      const int64_t f0 = f.offsets[lf], kf = f.offsets[lf + 1] - f0;
      const int64_t b0 = b.offsets[lb], kb = b.offsets[lb + 1] - b0;
      const double py = static_cast<double>(pix[p] / width), px = static_cast<double>(pix[p] % width);
      const double* c = img + 3 * pix[p];
      // Spatial term per side: e_s d / D with D the mean distance to the level's candidates.
      auto spatial = [&](const Candidates& s, int64_t s0, int64_t k, std::vector<double>& out) {
        out.resize(static_cast<size_t>(k));
        double total = 0.0;
        for (int64_t i = 0; i < k; ++i) {
          const double dy = s.pos[2 * (s0 + i)] - py, dx = s.pos[2 * (s0 + i) + 1] - px;
          out[i] = std::sqrt(dy * dy + dx * dx);
          total += out[i];
        }
        const double mean = k > 0 ? total / static_cast<double>(k) : 0.0;
        for (int64_t i = 0; i < k; ++i) out[i] = mean > 0.0 ? e_s * (out[i] / mean) : 0.0;
      };
      spatial(f, f0, kf, dist_f);
      spatial(b, b0, kb, dist_b);
      const double* logc = table[lf * b.levels + lb].data();
      // Candidates nearest first: log O <= -(spatial_F + spatial_B) because the
      // other two terms are <= 0, so once min_valid pairs counted, the scan of
      // a row (and of all later rows) stops where that bound falls below the
      // best. Ties go to the smaller (i, j), as in an unpruned raster scan.
      order_f.resize(static_cast<size_t>(kf));
      order_b.resize(static_cast<size_t>(kb));
      for (int64_t i = 0; i < kf; ++i) order_f[i] = i;
      for (int64_t j = 0; j < kb; ++j) order_b[j] = j;
      std::sort(order_f.begin(), order_f.end(), [&](int64_t x, int64_t y) { return dist_f[x] < dist_f[y]; });
      std::sort(order_b.begin(), order_b.end(), [&](int64_t x, int64_t y) { return dist_b[x] < dist_b[y]; });
      double best = kNegInf, best_alpha = 0.5;
      int64_t best_i = -1, best_j = -1, counted = 0;
      for (int64_t ii = 0; ii < kf; ++ii) {
        const int64_t i = order_f[ii];
        if (counted >= min_valid && kb > 0 && -(dist_f[i] + dist_b[order_b[0]]) < best) break;
        const double* fc = f.mean + 3 * (f0 + i);
        for (int64_t jj = 0; jj < kb; ++jj) {
          const int64_t j = order_b[jj];
          if (counted >= min_valid && -(dist_f[i] + dist_b[j]) < best) break;
          const double* bc = b.mean + 3 * (b0 + j);
          const double d0 = fc[0] - bc[0], d1 = fc[1] - bc[1], d2 = fc[2] - bc[2];
          const double den = d0 * d0 + d1 * d1 + d2 * d2;
          if (den == 0.0) continue;  // F == B: no alpha
          const double al = ((c[0] - bc[0]) * d0 + (c[1] - bc[1]) * d1 + (c[2] - bc[2]) * d2) / den;
          if (!(al >= -tolerance && al <= 1.0 + tolerance)) continue;
          const double r0 = c[0] - (al * fc[0] + (1.0 - al) * bc[0]);
          const double r1 = c[1] - (al * fc[1] + (1.0 - al) * bc[1]);
          const double r2 = c[2] - (al * fc[2] + (1.0 - al) * bc[2]);
          const double lo = -e_k * color_scale * std::sqrt(r0 * r0 + r1 * r1 + r2 * r2) - (dist_f[i] + dist_b[j]) +
                            logc[i * kb + j];
          if (lo == kNegInf) continue;  // C = 0: the pair's objective is 0
          ++counted;
          if (lo > best || (lo == best && (i < best_i || (i == best_i && j < best_j)))) {
            best = lo;
            best_i = i;
            best_j = j;
            best_alpha = al;
          }
        }
      }
      if (counted >= min_valid) {
        cf[p] = f0 + best_i;
        cb[p] = b0 + best_j;
        ca[p] = std::min(1.0, std::max(0.0, best_alpha));
        co[p] = std::exp(best);
      } else {
        cf[p] = -1;
        cb[p] = -1;
        ca[p] = 0.5;
        co[p] = 0.0;
      }
    }
  });
  return {fg_choice, bg_choice, alpha, objective};
}

// EM for a Gaussian mixture with one shared diagonal covariance (schema:
// csrc/ops/comprehensive_sampling.cpp). The E-step runs over fixed blocks of
// points in parallel; each block sums its responsibilities into its own
// accumulators, added up in block order, so the result does not depend on the
// number of threads.
at::Tensor comprehensive_gmm_labels_cpu(const at::Tensor& x, const at::Tensor& means, int64_t n_fit, int64_t max_iter,
                                       double tol) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kDouble && x.is_contiguous() && x.size(0) >= 1,
              "x must be a contiguous [N,D] float64 tensor with N >= 1, got ", x.sizes(), " ", x.scalar_type());
  const int64_t rows = x.size(0), dims = x.size(1);
  TORCH_CHECK(n_fit >= 1 && n_fit <= rows, "n_fit must lie in [1, ", rows, "], got ", n_fit);
  const int64_t n = n_fit;  // EM sees the first n_fit rows; all rows are labelled at the end
  TORCH_CHECK(means.dim() == 2 && means.size(1) == dims && means.size(0) >= 1 && means.scalar_type() == at::kDouble &&
                  means.is_contiguous(),
              "means must be a contiguous [K,", dims, "] float64 tensor with K >= 1, got ", means.sizes());
  TORCH_CHECK(max_iter >= 0 && tol >= 0, "max_iter and tol must be >= 0");
  const double* xp = x.data_ptr<double>();
  int64_t k = means.size(0);
  std::vector<double> mu(means.data_ptr<double>(), means.data_ptr<double>() + k * dims);
  std::vector<double> log_pi(static_cast<size_t>(k), -std::log(static_cast<double>(k)));
  // Start from the data's (population) variance, floored so that a constant dimension cannot divide by zero.
  std::vector<double> var(static_cast<size_t>(dims)), mean(static_cast<size_t>(dims), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dims; ++d) mean[d] += xp[i * dims + d];
  for (int64_t d = 0; d < dims; ++d) mean[d] /= static_cast<double>(n);
  double max_var = 0.0;
  for (int64_t d = 0; d < dims; ++d) {
    double acc = 0.0;
    for (int64_t i = 0; i < n; ++i) acc += (xp[i * dims + d] - mean[d]) * (xp[i * dims + d] - mean[d]);
    var[d] = acc / static_cast<double>(n);
    max_var = std::max(max_var, var[d]);
  }
  const double floor = 1e-6 * (1.0 + max_var);
  for (double& v : var) v = std::max(v, floor);

  constexpr int64_t kBlock = 2048;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  auto logits_of = [&](const double* xi, const std::vector<double>& inv, double* out) {
    for (int64_t c = 0; c < k; ++c) {
      double sq = 0.0;
      for (int64_t d = 0; d < dims; ++d) {
        const double t = xi[d] - mu[c * dims + d];
        sq += t * t * inv[d];
      }
      out[c] = log_pi[c] - 0.5 * sq;
    }
  };
  double previous = -std::numeric_limits<double>::infinity();
  for (int64_t it = 0; it < max_iter; ++it) {
    std::vector<double> inv(static_cast<size_t>(dims));
    for (int64_t d = 0; d < dims; ++d) inv[d] = 1.0 / var[d];
    const int64_t stride = k * (1 + 2 * dims) + 1;  // per block: weight, sum x, sum x^2 per component; log-lik
    std::vector<double> acc(static_cast<size_t>(blocks * stride), 0.0);
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      std::vector<double> logits(static_cast<size_t>(k));
      for (int64_t blk = b0; blk < b1; ++blk) {
        double* a = acc.data() + blk * stride;
        for (int64_t i = blk * kBlock; i < std::min(n, (blk + 1) * kBlock); ++i) {
          const double* xi = xp + i * dims;
          logits_of(xi, inv, logits.data());
          const double m = *std::max_element(logits.begin(), logits.end());
          double sum = 0.0;
          for (int64_t c = 0; c < k; ++c) sum += (logits[c] = std::exp(logits[c] - m));
          a[stride - 1] += m + std::log(sum);
          const double scale = 1.0 / sum;
          for (int64_t c = 0; c < k; ++c) {
            const double r = logits[c] * scale;
            a[c] += r;
            for (int64_t d = 0; d < dims; ++d) {
              a[k + c * dims + d] += r * xi[d];
              a[k + k * dims + c * dims + d] += r * xi[d] * xi[d];
            }
          }
        }
      }
    });
    std::vector<double> total(static_cast<size_t>(stride), 0.0);
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t j = 0; j < stride; ++j) total[j] += acc[blk * stride + j];
    double ll = total[stride - 1];
    for (int64_t d = 0; d < dims; ++d) ll -= 0.5 * static_cast<double>(n) * std::log(2.0 * kPi * var[d]);
    // M-step over the components that kept some mass.
    std::vector<double> new_mu, new_log_pi, spread(static_cast<size_t>(dims), 0.0);
    for (int64_t c = 0; c < k; ++c) {
      const double w = total[c];
      if (!(w > 1e-8 * static_cast<double>(n))) continue;
      new_log_pi.push_back(std::log(w / static_cast<double>(n)));
      for (int64_t d = 0; d < dims; ++d) {
        const double m = total[k + c * dims + d] / w;
        new_mu.push_back(m);
        spread[d] += total[k + k * dims + c * dims + d] - w * m * m;
      }
    }
    mu.swap(new_mu);
    log_pi.swap(new_log_pi);
    k = static_cast<int64_t>(log_pi.size());
    for (int64_t d = 0; d < dims; ++d) var[d] = std::max(spread[d] / static_cast<double>(n), floor);
    if (std::fabs(ll - previous) < tol * std::fabs(ll)) break;
    previous = ll;
  }
  std::vector<double> inv(static_cast<size_t>(dims));
  for (int64_t d = 0; d < dims; ++d) inv[d] = 1.0 / var[d];
  auto labels = at::empty({rows}, at::kLong);
  int64_t* lp = labels.data_ptr<int64_t>();
  at::parallel_for(0, rows, kBlock, [&](int64_t i0, int64_t i1) {
    std::vector<double> logits(static_cast<size_t>(k));
    for (int64_t i = i0; i < i1; ++i) {
      logits_of(xp + i * dims, inv, logits.data());
      lp[i] = std::max_element(logits.begin(), logits.end()) - logits.begin();
    }
  });
  return labels;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("comprehensive_sampling_select", &comprehensive_sampling_select_cpu);
  m.impl("comprehensive_gmm_labels", &comprehensive_gmm_labels_cpu);
}
