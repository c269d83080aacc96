// Shared declarations of the matting-metric ops (schemas in matting_metrics.cpp,
// kernels in cpu/ and cuda/matting_metrics_kernel.*, Python wrappers and the
// numpy reference in mattezoo/metrics/).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace mattezoo::ops::metrics {

// Columns of alpha_errors' [B, kAlphaErrorColumns] float64 result. Sums are
// over all pixels; "forced" means pred set to 1 / 0 where the trimap is 255 / 0
// (P3M's -T metrics). The kernels also count invalid values so that the
// wrapper can validate its inputs without another pass over them.
enum AlphaErrorColumn : int64_t {
  kAbsSum = 0,       // Σ|pred - gt|
  kSqSum,            // Σ(pred - gt)²
  kAbsSumForced,     // Σ|pred' - gt|        (0 without a trimap)
  kSqSumForced,      // Σ(pred' - gt)²       (0 without a trimap)
  kUnknownCount,     // #(trimap == 128)     (0 without a trimap)
  kBadPred,          // #pred values that are NaN or outside [0, 1]
  kBadGt,            // #gt values that are NaN or outside [0, 1]
  kBadTrimap,        // #trimap values other than 0, 128, 255
  kAlphaErrorColumns
};

// Border rules of gradient_error (mattezoo/metrics/filters.py has the same numbers).
constexpr int64_t kBorderReflect = 0;    // scipy 'reflect': dcba|abcd|dcba
constexpr int64_t kBorderReplicate = 1;  // OpenCV BORDER_REPLICATE: aaaa|abcd|dddd
constexpr int64_t kMaxTaps = 63;

// Connectivity: thresholds t_i = i / 10 for i = 0..10 and phi's cutoff.
constexpr int kConnLevels = 10;
constexpr double kConnPhiCutoff = 0.15;

constexpr uint8_t kTrimapBackground = 0, kTrimapUnknown = 128, kTrimapForeground = 255;

// Throw a c10::Error naming the problem unless the arguments are usable:
// pred and gt [B,H,W] of one floating dtype (float32 or float64) on one
// device, trimap (when given) [B,H,W] uint8 on that device.
void check_alpha_pair(const char* op, const at::Tensor& pred, const at::Tensor& gt,
                      const std::optional<at::Tensor>& trimap);
// Taps: 1-D float64 CPU or same-device tensors of one odd length <= kMaxTaps;
// border one of the kBorder* values.
void check_filter(const at::Tensor& smooth_taps, const at::Tensor& deriv_taps, int64_t border);

// The inputs the trimap-region flags of gradient_error / connectivity_error
// describe, built from whole-tensor ATen ops on any device (the CUDA kernels
// use them; the CPU kernels apply the same maps while they read each row):
// pred with 1 / 0 where the trimap is 255 / 0, and each image of [B,H,W]
// min-max scaled to [0, 1] in float64 (a constant image becomes 0).
at::Tensor force_known_values(const at::Tensor& pred, const at::Tensor& trimap);
at::Tensor min_max_normalized(const at::Tensor& x);

// Reflect / replicate an index into [0, n) (n >= 1); reflect is periodic with
// period 2n, so it also serves lines shorter than the filter, as scipy does.
inline int64_t border_index(int64_t i, int64_t n, int64_t border) {
  if (border == kBorderReplicate) return i < 0 ? 0 : (i >= n ? n - 1 : i);
  const int64_t period = 2 * n;
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

}  // namespace mattezoo::ops::metrics
