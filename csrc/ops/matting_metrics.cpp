// Schemas and argument checks of the matting-metric ops.
//
// The ops return raw per-image sums in float64; the scale factors of each
// metric (/1000, /(H·W), /10, ...) and the choice of convention live in the
// Python wrappers (mattezoo/metrics/). Kernels: cpu/ and
// cuda/matting_metrics_kernel.*; the numpy reference and test oracle:
// mattezoo/metrics/reference.py.
#include "ops/matting_metrics.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <limits>

namespace mattezoo::ops::metrics {

void check_alpha_pair(const char* op, const at::Tensor& pred, const at::Tensor& gt,
                      const std::optional<at::Tensor>& trimap) {
  TORCH_CHECK_VALUE(pred.dim() == 3, op, ": pred must be [B,H,W], got ", pred.dim(), "-D");
  TORCH_CHECK_VALUE(gt.sizes() == pred.sizes(), op, ": gt shape ", gt.sizes(), " differs from pred shape ",
                    pred.sizes());
  TORCH_CHECK_VALUE(pred.scalar_type() == at::kFloat || pred.scalar_type() == at::kDouble, op,
                    ": pred dtype ", pred.scalar_type(), " is not float32 or float64");
  TORCH_CHECK_VALUE(gt.scalar_type() == pred.scalar_type(), op, ": gt dtype ", gt.scalar_type(),
                    " differs from pred dtype ", pred.scalar_type());
  TORCH_CHECK_VALUE(gt.device() == pred.device(), op, ": gt is on ", gt.device(), ", pred on ", pred.device());
  TORCH_CHECK_VALUE(pred.numel() < (int64_t{1} << 31), op, ": at most 2^31 - 1 pixels per batch");
  if (trimap.has_value()) {
    const at::Tensor& t = *trimap;
    TORCH_CHECK_VALUE(t.sizes() == pred.sizes(), op, ": trimap shape ", t.sizes(), " differs from pred shape ",
                      pred.sizes());
    TORCH_CHECK_VALUE(t.scalar_type() == at::kByte, op, ": trimap dtype ", t.scalar_type(),
                      " is not uint8 (0 / 128 / 255)");
    TORCH_CHECK_VALUE(t.device() == pred.device(), op, ": trimap is on ", t.device(), ", pred on ", pred.device());
  }
}

void check_filter(const at::Tensor& smooth_taps, const at::Tensor& deriv_taps, int64_t border) {
  for (const at::Tensor* taps : {&smooth_taps, &deriv_taps}) {
    TORCH_CHECK_VALUE(taps->dim() == 1 && taps->scalar_type() == at::kDouble,
                      "gradient_error: taps must be 1-D float64, got ", taps->dim(), "-D ", taps->scalar_type());
    TORCH_CHECK_VALUE(taps->numel() % 2 == 1 && taps->numel() <= kMaxTaps,
                      "gradient_error: taps must have an odd length <= ", kMaxTaps, ", got ", taps->numel());
  }
  TORCH_CHECK_VALUE(smooth_taps.numel() == deriv_taps.numel(), "gradient_error: smoothing taps (",
                    smooth_taps.numel(), ") and derivative taps (", deriv_taps.numel(), ") differ in length");
  TORCH_CHECK_VALUE(border == kBorderReflect || border == kBorderReplicate, "gradient_error: border must be ",
                    kBorderReflect, " (reflect) or ", kBorderReplicate, " (replicate), got ", border);
}

at::Tensor force_known_values(const at::Tensor& pred, const at::Tensor& trimap) {
  const at::Tensor one = at::ones({}, pred.options()), zero = at::zeros({}, pred.options());
  return at::where(trimap == kTrimapForeground, one, at::where(trimap == kTrimapBackground, zero, pred));
}

at::Tensor min_max_normalized(const at::Tensor& x) {
  const at::Tensor d = x.to(at::kDouble);
  const at::Tensor flat = d.flatten(1);
  const at::Tensor lo = std::get<0>(flat.min(1)), span = std::get<0>(flat.max(1)) - lo;
  const at::Tensor scale = at::where(span > std::numeric_limits<double>::epsilon(), 1.0 / span, at::zeros_like(span));
  const at::Tensor shift = -lo * scale;
  return d * scale.view({-1, 1, 1}) + shift.view({-1, 1, 1});
}

}  // namespace mattezoo::ops::metrics

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  // pred, gt: [B,H,W] float32/float64; trimap: [B,H,W] uint8 or None.
  // Returns [B, 8] float64, the columns of AlphaErrorColumn: one fused pass
  // for SAD/MSE/MAD, their trimap-forced (-T) variants and input validation.
  m.def("alpha_errors(Tensor pred, Tensor gt, Tensor? trimap) -> Tensor");
  // Σ (|∇pred| - |∇gt|)² per image ([B] float64), with ∇ the separable
  // derivative filter (smooth ⊗ deriv along each axis, correlation order,
  // border rule 0 = reflect, 1 = replicate); summed over trimap == 128 only
  // when a trimap is given.
  // force_known (needs the trimap): pred set to 1 / 0 where the trimap is
  // 255 / 0 first; normalize: each image of that pred and of gt min-max
  // scaled to [0, 1] in float64 first (mmagic's trimap-region convention).
  m.def(
      "gradient_error(Tensor pred, Tensor gt, Tensor smooth_taps, Tensor deriv_taps, int border, Tensor? trimap,"
      " bool force_known=False, bool normalize=False) -> Tensor");
  // Σ |phi(pred) - phi(gt)| per image ([B] float64) with the round-down map of
  // the largest 4-connected components at t = 0.1 .. 1.0; over trimap == 128
  // only when a trimap is given. assign_when_empty: an empty intersection
  // puts every pixel outside (mmagic) instead of skipping the threshold (P3M).
  // force_known (needs the trimap): components of pred set to 1 / 0 where
  // the trimap is 255 / 0.
  m.def(
      "connectivity_error(Tensor pred, Tensor gt, Tensor? trimap, bool assign_when_empty, bool force_known=False)"
      " -> Tensor");
}
