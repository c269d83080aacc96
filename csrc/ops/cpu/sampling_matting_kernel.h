// Helpers shared by the sampling-based matting kernels (schemas and
// conventions: csrc/ops/sampling_matting.cpp).
//
// The NumPy fallbacks in mattezoo/classical/_sampling_reference.py evaluate
// the same expressions in the same order, so both paths round alike and pick
// the same samples; keep the two in step when changing either.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

namespace mattezoo_sampling {

constexpr uint8_t kBackground = 0;
constexpr uint8_t kForeground = 1;
constexpr uint8_t kUnknown = 2;

// Added to |F - B|^2 so that F == B gives alpha 0 instead of 0/0.
constexpr double kAlphaGuard = 1e-10;

// alpha of colour c on the segment from b to f (projection, clamped to [0,1]).
inline double project_alpha(const double* c, const double* f, const double* b) {
  const double d0 = f[0] - b[0], d1 = f[1] - b[1], d2 = f[2] - b[2];
  const double num = (c[0] - b[0]) * d0 + (c[1] - b[1]) * d1 + (c[2] - b[2]) * d2;
  const double den = d0 * d0 + d1 * d1 + d2 * d2 + kAlphaGuard;
  return std::min(1.0, std::max(0.0, num / den));
}

// |c - (alpha f + (1 - alpha) b)|: how far c is from the composite of f and b.
inline double distortion(const double* c, const double* f, const double* b, double alpha) {
  const double r0 = c[0] - (alpha * f[0] + (1.0 - alpha) * b[0]);
  const double r1 = c[1] - (alpha * f[1] + (1.0 - alpha) * b[1]);
  const double r2 = c[2] - (alpha * f[2] + (1.0 - alpha) * b[2]);
  return std::sqrt(r0 * r0 + r1 * r1 + r2 * r2);
}

// x^e with the small integer exponents of the papers as plain products, so
// that the NumPy fallback (which does the same) rounds identically.
inline double power(double x, double e) {
  if (e == 1.0) return x;
  if (e == 2.0) return x * x;
  if (e == 3.0) return x * x * x;
  if (e == 4.0) return (x * x) * (x * x);
  return std::pow(x, e);
}

inline double color_dist2(const double* a, const double* b) {
  const double d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2];
  return d0 * d0 + d1 * d1 + d2 * d2;
}

// Offsets (dy, dx) with dy^2 + dx^2 <= radius2, nearest first, ties by dy then dx.
struct Offset {
  int32_t dy, dx;
  int64_t d2;
};

inline std::vector<Offset> disc_offsets(double radius2) {
  const int32_t r = static_cast<int32_t>(std::floor(std::sqrt(std::max(radius2, 0.0))));
  std::vector<Offset> out;
  for (int32_t dy = -r; dy <= r; ++dy)
    for (int32_t dx = -r; dx <= r; ++dx) {
      const int64_t d2 = int64_t{dy} * dy + int64_t{dx} * dx;
      if (static_cast<double>(d2) <= radius2) out.push_back(Offset{dy, dx, d2});
    }
  std::stable_sort(out.begin(), out.end(), [](const Offset& a, const Offset& b) { return a.d2 < b.d2; });
  return out;
}

inline void check_image(const at::Tensor& image) {
  TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == at::kDouble && image.is_contiguous(),
              "image must be a contiguous [H,W,3] float64 tensor, got ", image.sizes(), " ", image.scalar_type());
}

inline void check_labels(const at::Tensor& labels, const at::Tensor& image) {
  TORCH_CHECK(labels.dim() == 2 && labels.size(0) == image.size(0) && labels.size(1) == image.size(1) &&
                  labels.scalar_type() == at::kByte && labels.is_contiguous(),
              "labels must be a contiguous [H,W] uint8 tensor matching the image, got ", labels.sizes(), " ",
              labels.scalar_type());
}

inline void check_vector(const at::Tensor& t, int64_t n, at::ScalarType type, const char* name) {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == n && t.scalar_type() == type && t.is_contiguous(), name,
              " must be a contiguous [", n, "] ", type, " tensor, got ", t.sizes(), " ", t.scalar_type());
}

// Raster indices must lie in [0, limit); sample lists may hold -1 where allowed.
inline void check_indices(const int64_t* idx, int64_t n, int64_t limit, bool allow_missing, const char* name) {
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK((idx[i] >= 0 || (allow_missing && idx[i] == -1)) && idx[i] < limit, name, "[", i, "] = ", idx[i],
                " is out of range [", allow_missing ? -1 : 0, ", ", limit, ")");
}

}  // namespace mattezoo_sampling
