// CPU kernel of mattezoo::estimate_foreground_ml (schema: csrc/ops/foreground.cpp).
//
// Germer et al. solve, pixel by pixel, the 2x2 least-squares problem
//   min  (a F + (1-a) B - I)^2 + sum_{n in N4} (eps + g |a - a_n|) (|F - F_n|^2 + |B - B_n|^2)
// for (F, B) from coarse to fine: each level starts from the previous one's
// result, upsampled with nearest neighbours. The paper (and pymatting) sweep
// the pixels in raster order (Gauss-Seidel); here each sweep is red-black
// Gauss-Seidel instead, so that all pixels of one colour update in parallel:
// their four neighbours all have the other colour.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int kMaxChannels = 16;

// Levels smaller than this run on one thread. A pass over 800x600 takes about
// a millisecond, and an estimate makes ~150 passes over levels of all sizes.
// On the shared 2-core box the wait for a second thread at each parallel
// region cost more than it saved: two threads took 0.33-0.46 s wall for the
// whole 800x600 estimate, one 0.15 s, and splitting only the levels of 2^18+
// pixels still 0.25 s. Images beyond ~1080p are split.
constexpr int64_t kParallelPixels = int64_t{1} << 21;

// Rows per task: the whole level (no parallel region) below kParallelPixels.
int64_t row_grain(int64_t h, int64_t w) { return h * w >= kParallelPixels ? 16 : std::max<int64_t>(h, 1); }

// dst (h x w x c) from src (hs x ws x c) with nearest neighbours, as pymatting's resize.
void resize_nearest(const float* src, int64_t hs, int64_t ws, float* dst, int64_t h, int64_t w, int64_t c) {
  at::parallel_for(0, h, row_grain(h, w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t ys = std::min(hs - 1, y * hs / h);
      for (int64_t x = 0; x < w; ++x) {
        const int64_t xs = std::min(ws - 1, x * ws / w);
        std::copy_n(src + (ys * ws + xs) * c, c, dst + (y * w + x) * c);
      }
    }
  });
}

// One red or black half-sweep over a level of size h x w.
void update_colour(int parity, const float* image, const float* alpha, float* fg, float* bg, int64_t h, int64_t w, int64_t c,
                   float regularization, float gradient_weight) {
  at::parallel_for(0, h, row_grain(h, w), [&](int64_t y0, int64_t y1) {
    float b0[kMaxChannels], b1[kMaxChannels];
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = (y + parity) & 1; x < w; x += 2) {
        const int64_t i = y * w + x;
        const float a0 = alpha[i], a1 = 1.0f - a0;
        float a00 = a0 * a0, a01 = a0 * a1, a11 = a1 * a1;
        for (int64_t ch = 0; ch < c; ++ch) b0[ch] = a0 * image[i * c + ch], b1[ch] = a1 * image[i * c + ch];
        const int64_t nbr[4] = {y * w + std::max<int64_t>(x - 1, 0), y * w + std::min(x + 1, w - 1),
                                std::max<int64_t>(y - 1, 0) * w + x, std::min(y + 1, h - 1) * w + x};
        for (int64_t j : nbr) {
          const float da = regularization + gradient_weight * std::fabs(a0 - alpha[j]);
          a00 += da, a11 += da;
          for (int64_t ch = 0; ch < c; ++ch) b0[ch] += da * fg[j * c + ch], b1[ch] += da * bg[j * c + ch];
        }
        const float inv_det = 1.0f / (a00 * a11 - a01 * a01);
        const float m00 = inv_det * a11, m01 = -inv_det * a01, m11 = inv_det * a00;
        for (int64_t ch = 0; ch < c; ++ch) {
          fg[i * c + ch] = std::clamp(m00 * b0[ch] + m01 * b1[ch], 0.0f, 1.0f);
          bg[i * c + ch] = std::clamp(m01 * b0[ch] + m11 * b1[ch], 0.0f, 1.0f);
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> estimate_foreground_ml_cpu(const at::Tensor& image_in, const at::Tensor& alpha_in,
                                                              double regularization, int64_t n_small_iterations,
                                                              int64_t n_big_iterations, int64_t small_size,
                                                              double gradient_weight) {
  TORCH_CHECK(image_in.dim() == 3 && image_in.size(2) >= 1 && image_in.size(2) <= kMaxChannels,
              "estimate_foreground_ml: image must be [H,W,C] with 1 <= C <= ", kMaxChannels, ", got ", image_in.sizes());
  TORCH_CHECK(alpha_in.sizes() == image_in.sizes().slice(0, 2), "estimate_foreground_ml: alpha must be [H,W] like the image");
  TORCH_CHECK(image_in.size(0) >= 1 && image_in.size(1) >= 1, "estimate_foreground_ml: empty image");
  TORCH_CHECK(n_small_iterations >= 0 && n_big_iterations >= 0, "estimate_foreground_ml: iteration counts must be >= 0");
  const auto image = image_in.to(at::kFloat).contiguous();
  const auto alpha = alpha_in.to(at::kFloat).contiguous();
  const int64_t h0 = image.size(0), w0 = image.size(1), c = image.size(2);
  const float* img0 = image.data_ptr<float>();
  const float* alpha0 = alpha.data_ptr<float>();
  const float reg = static_cast<float>(regularization), gw = static_cast<float>(gradient_weight);

  // Level 0 is one pixel: the mean colours of the (almost) opaque and the
  // (almost) transparent pixels.
  std::vector<double> f_sum(c, 0.0), b_sum(c, 0.0);
  double f_count = 0.0, b_count = 0.0;
  for (int64_t i = 0; i < h0 * w0; ++i) {
    if (alpha0[i] > 0.9f) {
      for (int64_t ch = 0; ch < c; ++ch) f_sum[ch] += img0[i * c + ch];
      f_count += 1.0;
    }
    if (alpha0[i] < 0.1f) {
      for (int64_t ch = 0; ch < c; ++ch) b_sum[ch] += img0[i * c + ch];
      b_count += 1.0;
    }
  }
  std::vector<float> fg_prev(c), bg_prev(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    fg_prev[ch] = static_cast<float>(f_sum[ch] / (f_count + 1e-5));
    bg_prev[ch] = static_cast<float>(b_sum[ch] / (b_count + 1e-5));
  }
  int64_t h_prev = 1, w_prev = 1;

  const int64_t n_levels = static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(std::max(h0, w0)))));
  std::vector<float> img, alp, fg, bg;
  for (int64_t level = 0; level <= n_levels; ++level) {
    // Sizes grow geometrically from 1x1 to h0 x w0 (nearbyint: ties to even, like Python's round).
    const double t = n_levels > 0 ? static_cast<double>(level) / n_levels : 1.0;
    const int64_t w = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(std::pow(static_cast<double>(w0), t))));
    const int64_t h = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(std::pow(static_cast<double>(h0), t))));
    img.resize(h * w * c), alp.resize(h * w), fg.resize(h * w * c), bg.resize(h * w * c);
    resize_nearest(img0, h0, w0, img.data(), h, w, c);
    resize_nearest(alpha0, h0, w0, alp.data(), h, w, 1);
    resize_nearest(fg_prev.data(), h_prev, w_prev, fg.data(), h, w, c);
    resize_nearest(bg_prev.data(), h_prev, w_prev, bg.data(), h, w, c);
    const int64_t n_iter = (w <= small_size && h <= small_size) ? n_small_iterations : n_big_iterations;
    for (int64_t it = 0; it < n_iter; ++it) {
      update_colour(0, img.data(), alp.data(), fg.data(), bg.data(), h, w, c, reg, gw);
      update_colour(1, img.data(), alp.data(), fg.data(), bg.data(), h, w, c, reg, gw);
    }
    fg_prev.swap(fg), bg_prev.swap(bg);
    h_prev = h, w_prev = w;
  }
  auto foreground = at::from_blob(fg_prev.data(), {h0, w0, c}, at::kFloat).clone();
  auto background = at::from_blob(bg_prev.data(), {h0, w0, c}, at::kFloat).clone();
  return {foreground, background};
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("estimate_foreground_ml", &estimate_foreground_ml_cpu);
}
