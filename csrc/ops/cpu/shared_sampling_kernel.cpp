// CPU kernels of shared sampling's selection, refinement and local smoothing
// (Gastal & Oliveira 2010, sections 4.2-4.4). Schemas:
// csrc/ops/sampling_matting.cpp. Every pixel is independent given the
// previous step's output, so each step is one parallel loop.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "sampling_matting_kernel.h"

namespace {

using namespace mattezoo_sampling;

// N_p(F, B): the squared distortions of F and B summed over the 3x3
// neighbourhood of p (clipped at the image border); each neighbour q uses its
// own projected alpha.
double neighbourhood_distortion(const double* img, int64_t height, int64_t width, int64_t y, int64_t x, const double* f,
                                const double* b) {
  double sum = 0.0;
  for (int64_t qy = std::max<int64_t>(y - 1, 0); qy <= std::min(y + 1, height - 1); ++qy)
    for (int64_t qx = std::max<int64_t>(x - 1, 0); qx <= std::min(x + 1, width - 1); ++qx) {
      const double* c = img + 3 * (qy * width + qx);
      const double m = distortion(c, f, b, project_alpha(c, f, b));
      sum += m * m;
    }
  return sum;
}

inline double pixel_distance(int64_t p, int64_t q, int64_t width) {
  const double dy = static_cast<double>(p / width - q / width), dx = static_cast<double>(p % width - q % width);
  return std::sqrt(dy * dy + dx * dx);
}

std::tuple<at::Tensor, at::Tensor> shared_sampling_select_cpu(const at::Tensor& image, const at::Tensor& pixels,
                                                              const at::Tensor& fg_index, const at::Tensor& bg_index,
                                                              const at::Tensor& fg_energy, const at::Tensor& bg_energy,
                                                              double e_n, double e_a, double e_f, double e_b) {
  check_image(image);
  const int64_t height = image.size(0), width = image.size(1), n = pixels.size(0);
  check_vector(pixels, n, at::kLong, "pixels");
  TORCH_CHECK(fg_index.dim() == 2 && fg_index.size(0) == n, "fg_index must be [N,k]");
  const int64_t k = fg_index.size(1);
  for (const at::Tensor* t : {&fg_index, &bg_index, &fg_energy, &bg_energy})
    TORCH_CHECK(t->dim() == 2 && t->size(0) == n && t->size(1) == k && t->is_contiguous(),
                "sample tensors must all be contiguous [N,k]");
  TORCH_CHECK(fg_index.scalar_type() == at::kLong && bg_index.scalar_type() == at::kLong &&
                  fg_energy.scalar_type() == at::kDouble && bg_energy.scalar_type() == at::kDouble,
              "sample indices must be int64 and energies float64");
  const double* img = image.data_ptr<double>();
  const int64_t* pix = pixels.data_ptr<int64_t>();
  const int64_t* fgi = fg_index.data_ptr<int64_t>();
  const int64_t* bgi = bg_index.data_ptr<int64_t>();
  const double* fge = fg_energy.data_ptr<double>();
  const double* bge = bg_energy.data_ptr<double>();
  check_indices(pix, n, height * width, false, "pixels");
  check_indices(fgi, n * k, height * width, true, "fg_index");
  check_indices(bgi, n * k, height * width, true, "bg_index");
  auto best_fg = at::full({n}, -1, at::kLong);
  auto best_bg = at::full({n}, -1, at::kLong);
  int64_t* out_f = best_fg.data_ptr<int64_t>();
  int64_t* out_b = best_bg.data_ptr<int64_t>();
  constexpr double inf = std::numeric_limits<double>::infinity();
  at::parallel_for(0, n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t p = pix[i], y = p / width, x = p % width;
      const double* c = img + 3 * p;
      // P_F (paper eq. 5): the pixel is likelier foreground when the path to
      // the background crosses more image gradient than the path to the foreground.
      double min_f = inf, min_b = inf;
      for (int64_t r = 0; r < k; ++r) {
        if (fgi[i * k + r] >= 0) min_f = std::min(min_f, fge[i * k + r]);
        if (bgi[i * k + r] >= 0) min_b = std::min(min_b, bge[i * k + r]);
      }
      if (min_f == inf || min_b == inf) continue;  // no pair to choose from
      const double total = min_f + min_b;
      const double prob_f = total > 0.0 ? min_b / total : 0.5;
      double best = inf;
      for (int64_t a = 0; a < k; ++a) {
        const int64_t f = fgi[i * k + a];
        if (f < 0) continue;
        const double dist_f = power(pixel_distance(p, f, width), e_f);
        for (int64_t bb = 0; bb < k; ++bb) {
          const int64_t b = bgi[i * k + bb];
          if (b < 0) continue;
          const double* fc = img + 3 * f;
          const double* bc = img + 3 * b;
          const double alpha = project_alpha(c, fc, bc);
          const double term_n = power(neighbourhood_distortion(img, height, width, y, x, fc, bc), e_n);
          const double term_a = power(prob_f + (1.0 - 2.0 * prob_f) * alpha, e_a);
          const double g = term_n * term_a * dist_f * power(pixel_distance(p, b, width), e_b);
          if (g < best) {
            best = g;
            out_f[i] = f;
            out_b[i] = b;
          }
        }
      }
    }
  });
  return {best_fg, best_bg};
}

// Mean squared colour distance of a sample to its 5x5 neighbourhood (clipped):
// how much the colour varies around it (the sigma^2 of the refinement step).
double sample_spread(const double* img, int64_t height, int64_t width, int64_t s) {
  const int64_t y = s / width, x = s % width;
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t qy = std::max<int64_t>(y - 2, 0); qy <= std::min(y + 2, height - 1); ++qy)
    for (int64_t qx = std::max<int64_t>(x - 2, 0); qx <= std::min(x + 2, width - 1); ++qx) {
      sum += color_dist2(img + 3 * (qy * width + qx), img + 3 * s);
      ++count;
    }
  return sum / static_cast<double>(count);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> shared_sampling_refine_cpu(
    const at::Tensor& image, const at::Tensor& labels, const at::Tensor& pixels, const at::Tensor& fg,
    const at::Tensor& bg, int64_t k_r, int64_t n_best, double lam) {
  check_image(image);
  check_labels(labels, image);
  const int64_t height = image.size(0), width = image.size(1), n = pixels.size(0);
  check_vector(pixels, n, at::kLong, "pixels");
  check_vector(fg, n, at::kLong, "fg");
  check_vector(bg, n, at::kLong, "bg");
  TORCH_CHECK(k_r >= 1 && n_best >= 1, "k_r and n_best must be >= 1, got ", k_r, " and ", n_best);
  const double* img = image.data_ptr<double>();
  const int64_t* pix = pixels.data_ptr<int64_t>();
  const int64_t* fgp = fg.data_ptr<int64_t>();
  const int64_t* bgp = bg.data_ptr<int64_t>();
  check_indices(pix, n, height * width, false, "pixels");
  check_indices(fgp, n, height * width, true, "fg");
  check_indices(bgp, n, height * width, true, "bg");
  // Row of each unknown pixel in `pixels`, -1 elsewhere.
  std::vector<int64_t> row(height * width, -1);
  for (int64_t i = 0; i < n; ++i) row[pix[i]] = i;
  std::vector<double> spread_f(n, 0.0), spread_b(n, 0.0);
  at::parallel_for(0, n, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      if (fgp[i] >= 0 && bgp[i] >= 0) {
        spread_f[i] = sample_spread(img, height, width, fgp[i]);
        spread_b[i] = sample_spread(img, height, width, bgp[i]);
      }
  });
  const auto offsets = disc_offsets(static_cast<double>(k_r));  // radius sqrt(k_r)
  auto out_f = at::empty({n, 3}, at::kDouble), out_b = at::empty({n, 3}, at::kDouble);
  auto out_a = at::empty({n}, at::kDouble), out_c = at::empty({n}, at::kDouble);
  double* of = out_f.data_ptr<double>();
  double* ob = out_b.data_ptr<double>();
  double* oa = out_a.data_ptr<double>();
  double* oc = out_c.data_ptr<double>();
  at::parallel_for(0, n, 16, [&](int64_t i0, int64_t i1) {
    std::vector<double> best_m(n_best);
    std::vector<int64_t> best_row(n_best);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t p = pix[i], y = p / width, x = p % width;
      const double* c = img + 3 * p;
      int64_t seen = 0, kept = 0;
      for (const Offset& o : offsets) {
        if (seen == k_r) break;
        const int64_t qy = y + o.dy, qx = x + o.dx;
        if (qy < 0 || qy >= height || qx < 0 || qx >= width) continue;
        const int64_t j = row[qy * width + qx];
        if (j < 0 || fgp[j] < 0 || bgp[j] < 0) continue;
        ++seen;
        const double* fc = img + 3 * fgp[j];
        const double* bc = img + 3 * bgp[j];
        const double m = distortion(c, fc, bc, project_alpha(c, fc, bc));
        // Insert into the sorted best list; an equal M keeps the earlier tuple first.
        int64_t pos = kept;
        while (pos > 0 && m < best_m[pos - 1]) --pos;
        if (pos >= n_best) continue;
        for (int64_t t = std::min(kept, n_best - 1); t > pos; --t) {
          best_m[t] = best_m[t - 1];
          best_row[t] = best_row[t - 1];
        }
        best_m[pos] = m;
        best_row[pos] = j;
        kept = std::min(kept + 1, n_best);
      }
      double* f_out = of + 3 * i;
      double* b_out = ob + 3 * i;
      if (kept == 0) {  // no tuple nearby: undecided, and no confidence in it
        for (int ch = 0; ch < 3; ++ch) f_out[ch] = b_out[ch] = c[ch];
        oa[i] = 0.5;
        oc[i] = 0.0;
        continue;
      }
      double mean_f[3] = {0, 0, 0}, mean_b[3] = {0, 0, 0}, var_f = 0.0, var_b = 0.0;
      for (int64_t t = 0; t < kept; ++t) {
        const int64_t j = best_row[t];
        for (int ch = 0; ch < 3; ++ch) {
          mean_f[ch] += img[3 * fgp[j] + ch];
          mean_b[ch] += img[3 * bgp[j] + ch];
        }
        var_f += spread_f[j];
        var_b += spread_b[j];
      }
      const double count = static_cast<double>(kept);
      for (int ch = 0; ch < 3; ++ch) {
        mean_f[ch] /= count;
        mean_b[ch] /= count;
      }
      var_f /= count;
      var_b /= count;
      // A pixel whose colour is as close to the averaged sample as that
      // sample's own colour spread is taken to be pure foreground (background) colour.
      const bool own_f = color_dist2(c, mean_f) <= var_f;
      const bool own_b = color_dist2(c, mean_b) <= var_b;
      for (int ch = 0; ch < 3; ++ch) {
        f_out[ch] = own_f ? c[ch] : mean_f[ch];
        b_out[ch] = own_b ? c[ch] : mean_b[ch];
      }
      const double alpha_mean = project_alpha(c, mean_f, mean_b);
      // With both replaced by C_p the projection is undefined; keep the averaged pair's alpha.
      oa[i] = (own_f && own_b) ? alpha_mean : project_alpha(c, f_out, b_out);
      oc[i] = std::exp(-lam * distortion(c, mean_f, mean_b, alpha_mean));
    }
  });
  return {out_f, out_b, out_a, out_c};
}

at::Tensor shared_sampling_smooth_cpu(const at::Tensor& image, const at::Tensor& labels, const at::Tensor& pixels,
                                      const at::Tensor& foreground, const at::Tensor& background,
                                      const at::Tensor& alpha, const at::Tensor& confidence, double m, double lam) {
  check_image(image);
  check_labels(labels, image);
  const int64_t height = image.size(0), width = image.size(1), n = pixels.size(0), hw = height * width;
  check_vector(pixels, n, at::kLong, "pixels");
  check_vector(alpha, n, at::kDouble, "alpha");
  check_vector(confidence, n, at::kDouble, "confidence");
  for (const at::Tensor* t : {&foreground, &background})
    TORCH_CHECK(t->dim() == 2 && t->size(0) == n && t->size(1) == 3 && t->scalar_type() == at::kDouble &&
                    t->is_contiguous(),
                "foreground and background must be contiguous [N,3] float64");
  TORCH_CHECK(m > 0, "m must be > 0, got ", m);
  const double* img = image.data_ptr<double>();
  const uint8_t* lab = labels.data_ptr<uint8_t>();
  const int64_t* pix = pixels.data_ptr<int64_t>();
  check_indices(pix, n, hw, false, "pixels");
  // Per-pixel F, B, alpha and confidence over the whole image: known pixels
  // have F = B = C, alpha from their label and full confidence.
  std::vector<double> F(img, img + 3 * hw), B(img, img + 3 * hw), A(hw), conf(hw, 1.0);
  for (int64_t p = 0; p < hw; ++p) A[p] = lab[p] == kForeground ? 1.0 : 0.0;
  const double* fin = foreground.data_ptr<double>();
  const double* bin = background.data_ptr<double>();
  const double* ain = alpha.data_ptr<double>();
  const double* cin = confidence.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = pix[i];
    for (int ch = 0; ch < 3; ++ch) {
      F[3 * p + ch] = fin[3 * i + ch];
      B[3 * p + ch] = bin[3 * i + ch];
    }
    A[p] = ain[i];
    conf[p] = cin[i];
  }
  // A Gaussian of variance sigma^2 = m / (9 pi) cut at 3 sigma covers a disc of about m pixels.
  const double sigma2 = m / (9.0 * M_PI);
  const auto offsets = disc_offsets(9.0 * sigma2);
  std::vector<double> gauss(offsets.size());
  for (size_t t = 0; t < offsets.size(); ++t) gauss[t] = std::exp(-static_cast<double>(offsets[t].d2) / (2.0 * sigma2));
  auto result = at::empty({n}, at::kDouble);
  double* out = result.data_ptr<double>();
  at::parallel_for(0, n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t p = pix[i], y = p / width, x = p % width;
      double f_num[3] = {0, 0, 0}, b_num[3] = {0, 0, 0}, f_den = 0, b_den = 0;
      double fb_num = 0, fb_den = 0, a_num = 0, a_den = 0;
      for (size_t t = 0; t < offsets.size(); ++t) {
        const int64_t qy = y + offsets[t].dy, qx = x + offsets[t].dx;
        if (qy < 0 || qy >= height || qx < 0 || qx >= width) continue;
        const int64_t q = qy * width + qx;
        const double g = gauss[t];
        // Colour weights favour confident neighbours whose alpha differs from
        // p's: their F and B are seen with less mixing (paper eq. 11).
        const double wc = q == p ? g * conf[q] : g * conf[q] * std::fabs(A[p] - A[q]);
        const double wf = wc * A[q], wb = wc * (1.0 - A[q]);
        for (int ch = 0; ch < 3; ++ch) {
          f_num[ch] += wf * F[3 * q + ch];
          b_num[ch] += wb * B[3 * q + ch];
        }
        f_den += wf;
        b_den += wb;
        const double wfb = conf[q] * A[q] * (1.0 - A[q]);
        fb_num += wfb * std::sqrt(color_dist2(&F[3 * q], &B[3 * q]));
        fb_den += wfb;
        const double wa = conf[q] * g + (lab[q] == kUnknown ? 0.0 : 1.0);
        a_num += wa * A[q];
        a_den += wa;
      }
      double fs[3], bs[3];
      for (int ch = 0; ch < 3; ++ch) {
        fs[ch] = f_den > 0 ? f_num[ch] / f_den : F[3 * p + ch];
        bs[ch] = b_den > 0 ? b_num[ch] / b_den : B[3 * p + ch];
      }
      const double c_fb = std::sqrt(color_dist2(fs, bs));
      // D_FB: the typical |F - B| of the mixed pixels around p; a smaller
      // separation of p's own pair means a less reliable alpha.
      const double ratio = (fb_den > 0 && fb_num > 0) ? std::min(1.0, c_fb / (fb_num / fb_den)) : 1.0;
      const double* c = img + 3 * p;
      const double alpha_s = project_alpha(c, fs, bs);
      const double conf_p = ratio * std::exp(-lam * distortion(c, fs, bs, alpha_s));
      const double alpha_local = a_den > 0 ? a_num / a_den : A[p];
      const double value = conf_p * alpha_s + (1.0 - conf_p) * alpha_local;
      out[i] = std::min(1.0, std::max(0.0, value));
    }
  });
  return result;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("shared_sampling_select", &shared_sampling_select_cpu);
  m.impl("shared_sampling_refine", &shared_sampling_refine_cpu);
  m.impl("shared_sampling_smooth", &shared_sampling_smooth_cpu);
}
