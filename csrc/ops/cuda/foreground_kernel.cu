// CUDA kernel of mattezoo::estimate_foreground_ml (schema: csrc/ops/foreground.cpp;
// the CPU kernel, csrc/ops/cpu/foreground_kernel.cpp, explains the method).
//
// The same coarse-to-fine red-black sweeps as the CPU kernel: per level, the
// image, alpha and the previous level's F and B are resized (nearest
// neighbour, one thread per output pixel), then each half-sweep updates all
// pixels of one colour at once, one thread per pixel; their four neighbours
// all have the other colour, so no thread reads what another writes. The
// arithmetic follows the CPU kernel term by term (float32, same order), so
// the two agree up to rounding (nvcc may fuse multiply-adds).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

namespace {

constexpr int kMaxChannels = 16;  // as the CPU kernel
constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::max<int64_t>(1, (n + kThreads - 1) / kThreads)); }

// dst (h x w x c) from src (hs x ws x c) with nearest neighbours: source row
// min(hs - 1, y * hs / h), as the CPU kernel and pymatting.
__global__ void resize_nearest_kernel(const float* __restrict__ src, int64_t hs, int64_t ws, float* __restrict__ dst,
                                      int64_t h, int64_t w, int64_t c) {
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= h * w) return;
  const int64_t y = k / w, x = k % w;
  const int64_t ys = min(hs - 1, y * hs / h), xs = min(ws - 1, x * ws / w);
  const float* from = src + (ys * ws + xs) * c;
  float* to = dst + k * c;
  for (int64_t ch = 0; ch < c; ++ch) to[ch] = from[ch];
}

void resize_nearest(const float* src, int64_t hs, int64_t ws, float* dst, int64_t h, int64_t w, int64_t c, cudaStream_t stream) {
  resize_nearest_kernel<<<blocks_for(h * w), kThreads, 0, stream>>>(src, hs, ws, dst, h, w, c);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// One red or black half-sweep: thread t of row y owns pixel x = 2t + ((y + parity) & 1).
// kChannels > 0 fixes the channel count at compile time (the RGB case);
// 0 reads it from `c` (at most kMaxChannels).
template <int kChannels>
__global__ void update_colour_kernel(int parity, const float* __restrict__ image, const float* __restrict__ alpha,
                                     float* __restrict__ fg, float* __restrict__ bg, int64_t h, int64_t w, int64_t c_runtime,
                                     float regularization, float gradient_weight) {
  const int64_t half = (w + 1) / 2;
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= h * half) return;
  const int64_t y = k / half;
  const int64_t x = 2 * (k % half) + ((y + parity) & 1);
  if (x >= w) return;
  const int64_t c = kChannels > 0 ? kChannels : c_runtime;
  constexpr int kSlots = kChannels > 0 ? kChannels : kMaxChannels;
  float b0[kSlots], b1[kSlots];
  const int64_t i = y * w + x;
  const float a0 = alpha[i], a1 = 1.0f - a0;
  float a00 = a0 * a0, a01 = a0 * a1, a11 = a1 * a1;
#pragma unroll
  for (int ch = 0; ch < kSlots; ++ch) {
    if (ch < c) b0[ch] = a0 * image[i * c + ch], b1[ch] = a1 * image[i * c + ch];
  }
  // Left, right, up, down with clamped borders: the CPU kernel's order.
  const int64_t nbr[4] = {y * w + max(x - 1, int64_t(0)), y * w + min(x + 1, w - 1), max(y - 1, int64_t(0)) * w + x,
                          min(y + 1, h - 1) * w + x};
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const int64_t j = nbr[t];
    const float da = regularization + gradient_weight * fabsf(a0 - alpha[j]);
    a00 += da, a11 += da;
#pragma unroll
    for (int ch = 0; ch < kSlots; ++ch) {
      if (ch < c) b0[ch] += da * fg[j * c + ch], b1[ch] += da * bg[j * c + ch];
    }
  }
  const float inv_det = 1.0f / (a00 * a11 - a01 * a01);
  const float m00 = inv_det * a11, m01 = -inv_det * a01, m11 = inv_det * a00;
#pragma unroll
  for (int ch = 0; ch < kSlots; ++ch) {
    if (ch < c) {
      fg[i * c + ch] = fminf(fmaxf(m00 * b0[ch] + m01 * b1[ch], 0.0f), 1.0f);
      bg[i * c + ch] = fminf(fmaxf(m01 * b0[ch] + m11 * b1[ch], 0.0f), 1.0f);
    }
  }
}

void update_colour(int parity, const float* image, const float* alpha, float* fg, float* bg, int64_t h, int64_t w, int64_t c,
                   float regularization, float gradient_weight, cudaStream_t stream) {
  const unsigned blocks = blocks_for(h * ((w + 1) / 2));
  if (c == 3) {
    update_colour_kernel<3><<<blocks, kThreads, 0, stream>>>(parity, image, alpha, fg, bg, h, w, c, regularization, gradient_weight);
  } else {
    update_colour_kernel<0><<<blocks, kThreads, 0, stream>>>(parity, image, alpha, fg, bg, h, w, c, regularization, gradient_weight);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> estimate_foreground_ml_cuda(const at::Tensor& image_in, const at::Tensor& alpha_in,
                                                               double regularization, int64_t n_small_iterations,
                                                               int64_t n_big_iterations, int64_t small_size,
                                                               double gradient_weight) {
  TORCH_CHECK(image_in.dim() == 3 && image_in.size(2) >= 1 && image_in.size(2) <= kMaxChannels,
              "estimate_foreground_ml: image must be [H,W,C] with 1 <= C <= ", kMaxChannels, ", got ", image_in.sizes());
  TORCH_CHECK(alpha_in.sizes() == image_in.sizes().slice(0, 2), "estimate_foreground_ml: alpha must be [H,W] like the image");
  TORCH_CHECK(image_in.size(0) >= 1 && image_in.size(1) >= 1, "estimate_foreground_ml: empty image");
  TORCH_CHECK(n_small_iterations >= 0 && n_big_iterations >= 0, "estimate_foreground_ml: iteration counts must be >= 0");
  TORCH_CHECK(alpha_in.device() == image_in.device(), "estimate_foreground_ml: image and alpha must be on the same device, got ",
              image_in.device(), " and ", alpha_in.device());
  const c10::cuda::CUDAGuard guard(image_in.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto image = image_in.to(at::kFloat).contiguous();
  const auto alpha = alpha_in.to(at::kFloat).contiguous();
  const int64_t h0 = image.size(0), w0 = image.size(1), c = image.size(2);
  const float reg = static_cast<float>(regularization), gw = static_cast<float>(gradient_weight);

  // Level 0 is one pixel: the mean colours of the (almost) opaque and the
  // (almost) transparent pixels, summed in float64 as on the CPU.
  const auto image64 = image.to(at::kDouble).view({h0 * w0, c});
  const auto opaque = (alpha > 0.9f).view({h0 * w0, 1}).to(at::kDouble);
  const auto clear = (alpha < 0.1f).view({h0 * w0, 1}).to(at::kDouble);
  auto fg_prev = ((image64 * opaque).sum(0) / (opaque.sum() + 1e-5)).to(at::kFloat).contiguous();
  auto bg_prev = ((image64 * clear).sum(0) / (clear.sum() + 1e-5)).to(at::kFloat).contiguous();
  int64_t h_prev = 1, w_prev = 1;

  const auto options = image.options();
  auto img = at::empty({h0 * w0 * c}, options), alp = at::empty({h0 * w0}, options);
  auto fg = at::empty({h0 * w0 * c}, options), bg = at::empty({h0 * w0 * c}, options);
  auto fg_next = at::empty({h0 * w0 * c}, options), bg_next = at::empty({h0 * w0 * c}, options);
  const int64_t n_levels = static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(std::max(h0, w0)))));
  for (int64_t level = 0; level <= n_levels; ++level) {
    // Sizes grow geometrically from 1x1 to h0 x w0 (nearbyint: ties to even, like Python's round).
    const double t = n_levels > 0 ? static_cast<double>(level) / n_levels : 1.0;
    const int64_t w = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(std::pow(static_cast<double>(w0), t))));
    const int64_t h = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(std::pow(static_cast<double>(h0), t))));
    resize_nearest(image.data_ptr<float>(), h0, w0, img.data_ptr<float>(), h, w, c, stream);
    resize_nearest(alpha.data_ptr<float>(), h0, w0, alp.data_ptr<float>(), h, w, 1, stream);
    resize_nearest(fg_prev.data_ptr<float>(), h_prev, w_prev, fg_next.data_ptr<float>(), h, w, c, stream);
    resize_nearest(bg_prev.data_ptr<float>(), h_prev, w_prev, bg_next.data_ptr<float>(), h, w, c, stream);
    const int64_t n_iter = (w <= small_size && h <= small_size) ? n_small_iterations : n_big_iterations;
    for (int64_t it = 0; it < n_iter; ++it) {
      for (int parity = 0; parity < 2; ++parity) {
        update_colour(parity, img.data_ptr<float>(), alp.data_ptr<float>(), fg_next.data_ptr<float>(), bg_next.data_ptr<float>(),
                      h, w, c, reg, gw, stream);
      }
    }
    // This level's result becomes the next level's source; the old source
    // buffer (never the 1-pixel start) is reused as the next target.
    if (level == 0) {
      fg_prev = fg_next, bg_prev = bg_next;
      fg_next = fg, bg_next = bg;
    } else {
      std::swap(fg_prev, fg_next), std::swap(bg_prev, bg_next);
    }
    h_prev = h, w_prev = w;
  }
  return {fg_prev.view({h0, w0, c}), bg_prev.view({h0, w0, c})};
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CUDA, m) {
  m.impl("estimate_foreground_ml", &estimate_foreground_ml_cuda);
}
