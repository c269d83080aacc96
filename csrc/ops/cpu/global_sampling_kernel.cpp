// CPU kernel of global sampling's randomised pair search (He, Rhemann,
// Rother, Tang, Sun, CVPR 2011, section 3.2). Schema:
// csrc/ops/sampling_matting.cpp.
//
// Every unknown pixel holds a pair (i, j): positions in the foreground and
// background sample lists, each sorted by intensity so that nearby positions
// hold similar colours. PatchMatch-style iterations improve the pairs: even
// iterations scan in raster order and try the pairs of the left and upper
// neighbours, odd ones scan backwards with the right and lower neighbours;
// after its propagation each pixel tries random pairs around its own at radii
// w, w/2, w/4, ... >= 1 (w = the larger list size). A candidate replaces the
// pair only when its cost is strictly lower.
//
// The random numbers are a hash of (seed, iteration, pixel, draw), not a
// stream, so the result depends on the seed alone; the NumPy fallback
// (wavefront order, which gives the same result as the raster scan) draws the
// same numbers.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "sampling_matting_kernel.h"

namespace {

using namespace mattezoo_sampling;

inline uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) for draw `stream` of `seed`.
inline double uniform(uint64_t seed, uint64_t stream) {
  const uint64_t z = mix64(seed * 0x9E3779B97F4A7C15ULL + mix64(stream + 0x632BE59BD9B4E019ULL));
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

// Draw numbering: iteration t (-1 for the initial pair), pixel i of n, draw d.
inline uint64_t stream_id(int64_t t, int64_t i, int64_t n, int64_t d) {
  return (static_cast<uint64_t>(t + 1) * static_cast<uint64_t>(n) + static_cast<uint64_t>(i)) * 128u +
         static_cast<uint64_t>(d);
}

struct Search {
  const double* img;
  int64_t width;
  const int64_t* pix;
  const int64_t* fs;
  const int64_t* bs;
  const double* df;
  const double* db;
  double kappa;

  // kappa * eps_c + eps_s(F) + eps_s(B) (paper eqs. 3-5) of pair (a, b) for pixel i; alpha on the side.
  double cost(int64_t i, int64_t a, int64_t b, double* alpha) const {
    const int64_t p = pix[i], f = fs[a], g = bs[b];
    const double* c = img + 3 * p;
    const double* fc = img + 3 * f;
    const double* bc = img + 3 * g;
    const double al = project_alpha(c, fc, bc);
    *alpha = al;
    const double py = static_cast<double>(p / width), px = static_cast<double>(p % width);
    const double fy = static_cast<double>(f / width) - py, fx = static_cast<double>(f % width) - px;
    const double by = static_cast<double>(g / width) - py, bx = static_cast<double>(g % width) - px;
    return kappa * distortion(c, fc, bc, al) + std::sqrt(fy * fy + fx * fx) / df[i] +
           std::sqrt(by * by + bx * bx) / db[i];
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> global_sampling_search_cpu(
    const at::Tensor& image, const at::Tensor& pixels, const at::Tensor& fg_samples, const at::Tensor& bg_samples,
    const at::Tensor& fg_dist, const at::Tensor& bg_dist, double kappa, int64_t iterations, int64_t seed) {
  check_image(image);
  const int64_t height = image.size(0), width = image.size(1), hw = height * width, n = pixels.size(0);
  check_vector(pixels, n, at::kLong, "pixels");
  check_vector(fg_dist, n, at::kDouble, "fg_dist");
  check_vector(bg_dist, n, at::kDouble, "bg_dist");
  const int64_t nf = fg_samples.numel(), nb = bg_samples.numel();
  check_vector(fg_samples, nf, at::kLong, "fg_samples");
  check_vector(bg_samples, nb, at::kLong, "bg_samples");
  TORCH_CHECK(nf > 0 && nb > 0, "global_sampling_search needs at least one foreground and one background sample");
  TORCH_CHECK(iterations >= 0, "iterations must be >= 0, got ", iterations);
  const int64_t* pix = pixels.data_ptr<int64_t>();
  check_indices(pix, n, hw, false, "pixels");
  check_indices(fg_samples.data_ptr<int64_t>(), nf, hw, false, "fg_samples");
  check_indices(bg_samples.data_ptr<int64_t>(), nb, hw, false, "bg_samples");
  const double* dfp = fg_dist.data_ptr<double>();
  const double* dbp = bg_dist.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK(dfp[i] > 0 && dbp[i] > 0, "fg_dist and bg_dist must be > 0 (pixel ", i, ")");
  const Search s{image.data_ptr<double>(), width, pix, fg_samples.data_ptr<int64_t>(), bg_samples.data_ptr<int64_t>(),
                 dfp, dbp, kappa};
  const uint64_t useed = static_cast<uint64_t>(seed);

  auto fg_choice = at::empty({n}, at::kLong), bg_choice = at::empty({n}, at::kLong);
  auto cost = at::empty({n}, at::kDouble), alpha = at::empty({n}, at::kDouble);
  int64_t* ci = fg_choice.data_ptr<int64_t>();
  int64_t* cj = bg_choice.data_ptr<int64_t>();
  double* cc = cost.data_ptr<double>();
  double* ca = alpha.data_ptr<double>();
  std::vector<int64_t> row(hw, -1);
  for (int64_t i = 0; i < n; ++i) row[pix[i]] = i;

  for (int64_t i = 0; i < n; ++i) {
    ci[i] = std::min(nf - 1, static_cast<int64_t>(std::floor(uniform(useed, stream_id(-1, i, n, 0)) * nf)));
    cj[i] = std::min(nb - 1, static_cast<int64_t>(std::floor(uniform(useed, stream_id(-1, i, n, 1)) * nb)));
    cc[i] = s.cost(i, ci[i], cj[i], &ca[i]);
  }
  auto consider = [&](int64_t i, int64_t a, int64_t b) {
    double al;
    const double c = s.cost(i, a, b, &al);
    if (c < cc[i]) {
      ci[i] = a;
      cj[i] = b;
      cc[i] = c;
      ca[i] = al;
    }
  };
  const double w = static_cast<double>(std::max(nf, nb));
  for (int64_t t = 0; t < iterations; ++t) {
    const bool forward = t % 2 == 0;
    const int64_t step = forward ? -1 : 1;  // neighbours already visited in this scan
    for (int64_t k = 0; k < n; ++k) {
      const int64_t i = forward ? k : n - 1 - k;
      const int64_t p = pix[i], y = p / width, x = p % width;
      // Propagation: the horizontal neighbour first, then the vertical one.
      if (x + step >= 0 && x + step < width) {
        const int64_t j = row[p + step];
        if (j >= 0) consider(i, ci[j], cj[j]);
      }
      if (y + step >= 0 && y + step < height) {
        const int64_t j = row[p + step * width];
        if (j >= 0) consider(i, ci[j], cj[j]);
      }
      // Random search around the current pair at halving radii.
      int64_t d = 0;
      for (double radius = w; radius >= 1.0; radius *= 0.5, d += 2) {
        const double u = 2.0 * uniform(useed, stream_id(t, i, n, d)) - 1.0;
        const double v = 2.0 * uniform(useed, stream_id(t, i, n, d + 1)) - 1.0;
        const int64_t a = std::min(nf - 1, std::max<int64_t>(0, ci[i] + static_cast<int64_t>(std::floor(radius * u + 0.5))));
        const int64_t b = std::min(nb - 1, std::max<int64_t>(0, cj[i] + static_cast<int64_t>(std::floor(radius * v + 0.5))));
        consider(i, a, b);
      }
    }
  }
  return {fg_choice, bg_choice, cost, alpha};
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) { m.impl("global_sampling_search", &global_sampling_search_cpu); }
