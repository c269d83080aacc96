// CUDA kernels of the matting-metric ops (schemas: ops/matting_metrics.cpp).
//
// * alpha_errors: a fused grid-stride reduction, per-block partial sums in
//   float64, then one thread per (image, column) adds the partials in order.
// * gradient_error: a horizontal pass into four float64 planes (smoothed and
//   differentiated pred and gt), then a vertical pass that forms both
//   gradient magnitudes and reduces the squared difference.
// * connectivity_error: per threshold, union-find labelling with atomicMin
//   (Playne & Hawick 2018): every component's root is its smallest raster
//   index, sizes are counted with atomics, and the largest component (ties to
//   the smaller root, i.e. the first in raster order) wins an atomicMax on
//   (size << 32 | ~root). Component sizes are exact integers, so the result is
//   deterministic and equals the CPU kernel's.
// All sums are taken in a fixed order: results do not vary from run to run.
#include "ops/matting_metrics.h"

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

namespace mattezoo::ops::metrics {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxBlocksPerImage = 1024;

int blocks_for(int64_t n) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(kMaxBlocksPerImage, (n + kThreads * 4 - 1) / (kThreads * 4))));
}

// Sums NV per-thread values over the block; thread v < NV writes total v to out[v].
template <int NV>
__device__ void block_sum(double (&v)[NV], double* out) {
  __shared__ double partial[NV][kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    double x = v[k];
    for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_down_sync(0xffffffffu, x, offset);
    if (lane == 0) partial[k][warp] = x;
  }
  __syncthreads();
  if (threadIdx.x < NV) {
    double s = 0.0;
    for (int w = 0; w < kWarps; ++w) s += partial[threadIdx.x][w];
    out[threadIdx.x] = s;
  }
}

// partials: [B, blocks, NV] -> out: [B, NV], added block by block.
__global__ void sum_partials_kernel(const double* partials, int blocks, int nv, int total, double* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int b = i / nv, k = i % nv;
  double s = 0.0;
  for (int j = 0; j < blocks; ++j) s += partials[(static_cast<int64_t>(b) * blocks + j) * nv + k];
  out[i] = s;
}

at::Tensor finish_sums(const at::Tensor& partials, int64_t B, int blocks, int nv) {
  at::Tensor out = at::empty({B, nv}, partials.options());
  const int total = static_cast<int>(B * nv);
  sum_partials_kernel<<<(total + 127) / 128, 128, 0, c10::cuda::getCurrentCUDAStream()>>>(
      partials.data_ptr<double>(), blocks, nv, total, out.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// ------------------------------------------------------------------ alpha_errors

template <typename scalar_t>
__global__ void alpha_errors_kernel(const scalar_t* __restrict__ pred, const scalar_t* __restrict__ gt,
                                    const uint8_t* __restrict__ trimap, int64_t n, double* partials) {
  const int64_t b = blockIdx.y;
  const scalar_t* p = pred + b * n;
  const scalar_t* g = gt + b * n;
  const uint8_t* t = trimap != nullptr ? trimap + b * n : nullptr;
  double v[kAlphaErrorColumns] = {};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double pv = p[i], gv = g[i], d = pv - gv;
    v[kAbsSum] += fabs(d);
    v[kSqSum] += d * d;
    v[kBadPred] += (pv >= 0.0 && pv <= 1.0) ? 0.0 : 1.0;
    v[kBadGt] += (gv >= 0.0 && gv <= 1.0) ? 0.0 : 1.0;
    if (t != nullptr) {
      const uint8_t tv = t[i];
      const double forced = tv == kTrimapForeground ? 1.0 : (tv == kTrimapBackground ? 0.0 : pv);
      const double df = forced - gv;
      v[kAbsSumForced] += fabs(df);
      v[kSqSumForced] += df * df;
      v[kUnknownCount] += tv == kTrimapUnknown ? 1.0 : 0.0;
      v[kBadTrimap] += (tv == kTrimapBackground || tv == kTrimapUnknown || tv == kTrimapForeground) ? 0.0 : 1.0;
    }
  }
  block_sum(v, partials + (b * gridDim.x + blockIdx.x) * kAlphaErrorColumns);
}

at::Tensor alpha_errors_cuda(const at::Tensor& pred_in, const at::Tensor& gt_in,
                             const std::optional<at::Tensor>& trimap_in) {
  check_alpha_pair("alpha_errors", pred_in, gt_in, trimap_in);
  c10::cuda::CUDAGuard guard(pred_in.device());
  const at::Tensor pred = pred_in.contiguous(), gt = gt_in.contiguous();
  const at::Tensor trimap = trimap_in.has_value() ? trimap_in->contiguous() : at::Tensor();
  const int64_t B = pred.size(0), n = pred.size(1) * pred.size(2);
  const auto f64 = pred.options().dtype(at::kDouble);
  if (B == 0 || n == 0) return at::zeros({B, kAlphaErrorColumns}, f64);
  const int blocks = blocks_for(n);
  at::Tensor partials = at::empty({B, blocks, kAlphaErrorColumns}, f64);
  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "alpha_errors_cuda", [&] {
    alpha_errors_kernel<scalar_t><<<dim3(blocks, B), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        pred.data_ptr<scalar_t>(), gt.data_ptr<scalar_t>(), trimap.defined() ? trimap.data_ptr<uint8_t>() : nullptr,
        n, partials.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return finish_sums(partials, B, blocks, kAlphaErrorColumns);
}

// ------------------------------------------------------------------ gradient_error

struct TapsArg {
  int r;
  double s[kMaxTaps / 2 + 1];
  double d[kMaxTaps / 2 + 1];
};

TapsArg make_taps(const at::Tensor& smooth_taps, const at::Tensor& deriv_taps) {
  const at::Tensor s = smooth_taps.to(at::kCPU).contiguous(), d = deriv_taps.to(at::kCPU).contiguous();
  const double* sp = s.data_ptr<double>();
  const double* dp = d.data_ptr<double>();
  const int64_t L = s.numel();
  for (int64_t k = 0; k < L; ++k) {
    TORCH_CHECK_VALUE(sp[k] == sp[L - 1 - k], "gradient_error: smoothing taps must be symmetric");
    TORCH_CHECK_VALUE(dp[k] == -dp[L - 1 - k], "gradient_error: derivative taps must be antisymmetric");
  }
  TapsArg taps{};
  taps.r = static_cast<int>(L / 2);
  for (int k = 0; k <= taps.r; ++k) {
    taps.s[k] = sp[k];
    taps.d[k] = dp[k];
  }
  return taps;
}

__device__ __forceinline__ int64_t border_index_dev(int64_t i, int64_t n, int64_t border) {
  if (border == kBorderReplicate) return i < 0 ? 0 : (i >= n ? n - 1 : i);
  const int64_t period = 2 * n;
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

// planes: [4, B, H, W] = smoothed pred, differentiated pred, smoothed gt, differentiated gt (along x).
template <typename scalar_t>
__global__ void gradient_rows_kernel(const scalar_t* __restrict__ pred, const scalar_t* __restrict__ gt, int64_t B,
                                     int64_t H, int64_t W, TapsArg taps, int64_t border, double* __restrict__ planes) {
  const int64_t total = B * H * W, plane = total;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % W, row = i - x;
    const int r = taps.r;
    double sp = taps.s[r] * static_cast<double>(pred[i]), sg = taps.s[r] * static_cast<double>(gt[i]);
    double dp = 0.0, dg = 0.0;
    for (int k = 0; k < r; ++k) {
      const int64_t lo = row + border_index_dev(x + k - r, W, border), hi = row + border_index_dev(x + r - k, W, border);
      const double plo = pred[lo], phi = pred[hi], glo = gt[lo], ghi = gt[hi];
      sp += taps.s[k] * (plo + phi);
      sg += taps.s[k] * (glo + ghi);
      dp += taps.d[k] * (plo - phi);
      dg += taps.d[k] * (glo - ghi);
    }
    planes[i] = sp;
    planes[plane + i] = dp;
    planes[2 * plane + i] = sg;
    planes[3 * plane + i] = dg;
  }
}

__global__ void gradient_cols_kernel(const double* __restrict__ planes, const uint8_t* __restrict__ trimap, int64_t H,
                                     int64_t W, TapsArg taps, int64_t border, int64_t plane, double* partials) {
  const int64_t b = blockIdx.y, n = H * W;
  const double* Sp = planes + b * n;
  const double* Dp = planes + plane + b * n;
  const double* Sg = planes + 2 * plane + b * n;
  const double* Dg = planes + 3 * plane + b * n;
  const uint8_t* t = trimap != nullptr ? trimap + b * n : nullptr;
  double v[1] = {0.0};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (t != nullptr && t[i] != kTrimapUnknown) continue;
    const int64_t y = i / W, x = i - y * W;
    const int r = taps.r;
    double gyp = 0.0, gyg = 0.0, gxp = taps.s[r] * Dp[i], gxg = taps.s[r] * Dg[i];
    for (int k = 0; k < r; ++k) {
      const int64_t a = border_index_dev(y + k - r, H, border) * W + x, c = border_index_dev(y + r - k, H, border) * W + x;
      gyp += taps.d[k] * (Sp[a] - Sp[c]);
      gyg += taps.d[k] * (Sg[a] - Sg[c]);
      gxp += taps.s[k] * (Dp[a] + Dp[c]);
      gxg += taps.s[k] * (Dg[a] + Dg[c]);
    }
    const double e = sqrt(gxp * gxp + gyp * gyp) - sqrt(gxg * gxg + gyg * gyg);
    v[0] += e * e;
  }
  block_sum(v, partials + b * gridDim.x + blockIdx.x);
}

at::Tensor gradient_error_cuda(const at::Tensor& pred_in, const at::Tensor& gt_in, const at::Tensor& smooth_taps,
                               const at::Tensor& deriv_taps, int64_t border,
                               const std::optional<at::Tensor>& trimap_in, bool force_known, bool normalize) {
  check_alpha_pair("gradient_error", pred_in, gt_in, trimap_in);
  check_filter(smooth_taps, deriv_taps, border);
  TORCH_CHECK_VALUE(!force_known || trimap_in.has_value(), "gradient_error: force_known needs a trimap");
  const TapsArg taps = make_taps(smooth_taps, deriv_taps);
  c10::cuda::CUDAGuard guard(pred_in.device());
  // The trimap-region inputs as whole-tensor ops (cheap on the device).
  at::Tensor pred = force_known ? force_known_values(pred_in, *trimap_in) : pred_in;
  at::Tensor gt = gt_in;
  if (normalize) {
    pred = min_max_normalized(pred);
    gt = min_max_normalized(gt);
  }
  pred = pred.contiguous();
  gt = gt.contiguous();
  const at::Tensor trimap = trimap_in.has_value() ? trimap_in->contiguous() : at::Tensor();
  const int64_t B = pred.size(0), H = pred.size(1), W = pred.size(2), n = H * W;
  const auto f64 = pred.options().dtype(at::kDouble);
  if (B == 0 || n == 0) return at::zeros({B}, f64);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor planes = at::empty({4, B, H, W}, f64);
  const int blocks = blocks_for(n);
  at::Tensor partials = at::empty({B, blocks, 1}, f64);
  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "gradient_error_cuda", [&] {
    const int row_blocks = static_cast<int>(std::min<int64_t>(65535, (B * n + kThreads - 1) / kThreads));
    gradient_rows_kernel<scalar_t><<<row_blocks, kThreads, 0, stream>>>(
        pred.data_ptr<scalar_t>(), gt.data_ptr<scalar_t>(), B, H, W, taps, border, planes.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  gradient_cols_kernel<<<dim3(blocks, B), kThreads, 0, stream>>>(
      planes.data_ptr<double>(), trimap.defined() ? trimap.data_ptr<uint8_t>() : nullptr, H, W, taps, border, B * n,
      partials.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return finish_sums(partials, B, blocks, 1).view({B});
}

// ------------------------------------------------------------------ connectivity_error

template <typename scalar_t>
__global__ void conn_levels_kernel(const scalar_t* __restrict__ pred, const scalar_t* __restrict__ gt, int64_t total,
                                   int8_t* __restrict__ lev, int8_t* __restrict__ lcode) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double v = fmin(static_cast<double>(pred[i]), static_cast<double>(gt[i]));
    int8_t lv = 0;
    for (int k = 1; k <= kConnLevels; ++k) lv += v >= static_cast<double>(k) / kConnLevels ? 1 : 0;
    lev[i] = lv;
    lcode[i] = -1;  // "l still -1"
  }
}

// label[x]: the parent of x (roots point at themselves), -1 outside the set.
__global__ void conn_init_kernel(const int8_t* __restrict__ lev, int level, int64_t n, int64_t total, int32_t* label,
                                 int32_t* size) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    label[i] = lev[i] >= level ? static_cast<int32_t>(i % n) : -1;
    size[i] = 0;
  }
}

__device__ __forceinline__ int32_t find_root(const int32_t* label, int32_t x) {
  // Reads bypass L1: other blocks change labels while this kernel runs.
  int32_t p = __ldcg(label + x);
  while (p != x) {
    x = p;
    p = __ldcg(label + x);
  }
  return x;
}

__device__ void unite(int32_t* label, int32_t a, int32_t b) {
  a = find_root(label, a);
  b = find_root(label, b);
  while (a != b) {
    if (a < b) {  // link the larger index under the smaller: roots stay minimal
      const int32_t t = a;
      a = b;
      b = t;
    }
    const int32_t old = atomicMin(label + a, b);
    if (old == a) return;  // a was a root and now hangs under b
    a = find_root(label, old);
    b = find_root(label, b);
  }
}

__global__ void conn_merge_kernel(const int8_t* __restrict__ lev, int level, int64_t H, int64_t W, int32_t* label) {
  const int64_t b = blockIdx.y, n = H * W;
  int32_t* lab = label + b * n;
  const int8_t* lv = lev + b * n;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (lv[i] < level) continue;
    const int64_t x = i % W;
    if (x > 0 && lv[i - 1] >= level) unite(lab, static_cast<int32_t>(i), static_cast<int32_t>(i - 1));
    if (i >= W && lv[i - W] >= level) unite(lab, static_cast<int32_t>(i), static_cast<int32_t>(i - W));
  }
}

__global__ void conn_count_kernel(int64_t n, int64_t total, int32_t* label, int32_t* size) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (label[i] < 0) continue;
    const int64_t base = i - i % n;
    const int32_t root = find_root(label + base, static_cast<int32_t>(i - base));
    label[i] = root;
    atomicAdd(size + base + root, 1);
  }
}

// Largest component per image: max of (size << 32 | ~root) over roots.
__global__ void conn_best_kernel(const int32_t* label, const int32_t* size, int64_t n, int64_t total,
                                 unsigned long long* best) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = i / n, x = i - b * n;
    if (label[i] != x) continue;
    const unsigned long long key = (static_cast<unsigned long long>(size[i]) << 32) |
                                   static_cast<unsigned long long>(0xFFFFFFFFu - static_cast<uint32_t>(x));
    atomicMax(best + b, key);
  }
}

__global__ void conn_assign_kernel(const int32_t* label, const unsigned long long* best, int level, int64_t n,
                                   int64_t total, bool assign_when_empty, int8_t* lcode) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (lcode[i] != -1) continue;
    const unsigned long long key = best[i / n];
    if (key == 0) {  // empty intersection: P3M skips the threshold, mmagic puts every pixel outside
      if (assign_when_empty) lcode[i] = static_cast<int8_t>(level - 1);
      continue;
    }
    const int32_t root = static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key & 0xFFFFFFFFull));
    if (label[i] != root) lcode[i] = static_cast<int8_t>(level - 1);
  }
}

template <typename scalar_t>
__global__ void conn_phi_kernel(const scalar_t* __restrict__ pred, const scalar_t* __restrict__ gt,
                                const uint8_t* __restrict__ trimap, const int8_t* __restrict__ lcode, int64_t n,
                                double* partials) {
  const int64_t b = blockIdx.y;
  double v[1] = {0.0};
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = b * n + j;
    if (trimap != nullptr && trimap[i] != kTrimapUnknown) continue;
    const double l = lcode[i] < 0 ? 1.0 : static_cast<double>(lcode[i]) / kConnLevels;
    const double dp = static_cast<double>(pred[i]) - l, dg = static_cast<double>(gt[i]) - l;
    const double phi_p = 1.0 - (dp >= kConnPhiCutoff ? dp : 0.0);
    const double phi_g = 1.0 - (dg >= kConnPhiCutoff ? dg : 0.0);
    v[0] += fabs(phi_p - phi_g);
  }
  block_sum(v, partials + b * gridDim.x + blockIdx.x);
}

at::Tensor connectivity_error_cuda(const at::Tensor& pred_in, const at::Tensor& gt_in,
                                   const std::optional<at::Tensor>& trimap_in, bool assign_when_empty,
                                   bool force_known) {
  check_alpha_pair("connectivity_error", pred_in, gt_in, trimap_in);
  TORCH_CHECK_VALUE(!force_known || trimap_in.has_value(), "connectivity_error: force_known needs a trimap");
  c10::cuda::CUDAGuard guard(pred_in.device());
  // Forcing changes pred only where the trimap is known, outside the unknown
  // region that phi is summed over, so one forced pred serves both.
  const at::Tensor pred = (force_known ? force_known_values(pred_in, *trimap_in) : pred_in).contiguous();
  const at::Tensor gt = gt_in.contiguous();
  const at::Tensor trimap = trimap_in.has_value() ? trimap_in->contiguous() : at::Tensor();
  const int64_t B = pred.size(0), H = pred.size(1), W = pred.size(2), n = H * W, total = B * n;
  const auto f64 = pred.options().dtype(at::kDouble);
  if (total == 0) return at::zeros({B}, f64);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int flat_blocks = static_cast<int>(std::min<int64_t>(65535, (total + kThreads - 1) / kThreads));
  const int blocks = blocks_for(n);
  at::Tensor lev = at::empty({total}, pred.options().dtype(at::kChar));
  at::Tensor lcode = at::empty({total}, pred.options().dtype(at::kChar));
  at::Tensor label = at::empty({total}, pred.options().dtype(at::kInt));
  at::Tensor size = at::empty({total}, pred.options().dtype(at::kInt));
  at::Tensor best = at::empty({B}, pred.options().dtype(at::kLong));
  auto* best_ptr = reinterpret_cast<unsigned long long*>(best.data_ptr<int64_t>());
  at::Tensor partials = at::empty({B, blocks, 1}, f64);
  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "connectivity_error_cuda", [&] {
    conn_levels_kernel<scalar_t><<<flat_blocks, kThreads, 0, stream>>>(
        pred.data_ptr<scalar_t>(), gt.data_ptr<scalar_t>(), total, lev.data_ptr<int8_t>(), lcode.data_ptr<int8_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    for (int level = 1; level <= kConnLevels; ++level) {
      conn_init_kernel<<<flat_blocks, kThreads, 0, stream>>>(lev.data_ptr<int8_t>(), level, n, total,
                                                             label.data_ptr<int32_t>(), size.data_ptr<int32_t>());
      conn_merge_kernel<<<dim3(blocks, B), kThreads, 0, stream>>>(lev.data_ptr<int8_t>(), level, H, W,
                                                                 label.data_ptr<int32_t>());
      conn_count_kernel<<<flat_blocks, kThreads, 0, stream>>>(n, total, label.data_ptr<int32_t>(),
                                                              size.data_ptr<int32_t>());
      C10_CUDA_CHECK(cudaMemsetAsync(best_ptr, 0, sizeof(unsigned long long) * B, stream));
      conn_best_kernel<<<flat_blocks, kThreads, 0, stream>>>(label.data_ptr<int32_t>(), size.data_ptr<int32_t>(), n,
                                                             total, best_ptr);
      conn_assign_kernel<<<flat_blocks, kThreads, 0, stream>>>(label.data_ptr<int32_t>(), best_ptr, level, n, total,
                                                               assign_when_empty, lcode.data_ptr<int8_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    conn_phi_kernel<scalar_t><<<dim3(blocks, B), kThreads, 0, stream>>>(
        pred.data_ptr<scalar_t>(), gt.data_ptr<scalar_t>(), trimap.defined() ? trimap.data_ptr<uint8_t>() : nullptr,
        lcode.data_ptr<int8_t>(), n, partials.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return finish_sums(partials, B, blocks, 1).view({B});
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CUDA, m) {
  m.impl("alpha_errors", &alpha_errors_cuda);
  m.impl("gradient_error", &gradient_error_cuda);
  m.impl("connectivity_error", &connectivity_error_cuda);
}

}  // namespace mattezoo::ops::metrics
