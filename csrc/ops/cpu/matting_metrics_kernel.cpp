// CPU kernels of the matting-metric ops (schemas: ops/matting_metrics.cpp).
//
// * alpha_errors: one pass over pred, gt and trimap per image row, in float64.
// * gradient_error: separable Gaussian-derivative filtering, streamed through
//   a ring buffer of horizontally filtered rows so that the working set stays
//   in cache; the symmetric / antisymmetric taps are folded as scipy does.
//   The trimap-region flags (force known values, min-max normalise) are
//   applied as each row is read, so that no full-size temporary is made.
// * connectivity_error: one union-find over the horizontal runs of the
//   nested threshold sets (see the comment above ConnScratch).
//
// Every sum is first taken per image row and the rows are then added in order,
// so results do not depend on the number of threads. On x86-64 CPUs with AVX2
// and FMA the filter runs a hand-vectorised path (chosen at run time; set
// MATTEZOO_CPU_BASELINE=1 to force the portable one, which the tests compare).
#include "ops/matting_metrics.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MZ_HAVE_AVX2_PATH 1
#define MZ_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define MZ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MZ_HAVE_AVX2_PATH 0
#define MZ_ALWAYS_INLINE inline
#endif

namespace mattezoo::ops::metrics {
namespace {

// ------------------------------------------------------------------ helpers

bool use_avx2() {
#if MZ_HAVE_AVX2_PATH
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* env = std::getenv("MATTEZOO_CPU_BASELINE");  // read per call so tests can flip it
  return supported && !(env != nullptr && env[0] != '\0' && std::strcmp(env, "0") != 0);
#else
  return false;
#endif
}

// Sum of per-row values, row by row, per image: deterministic for any thread count.
at::Tensor sum_rows(const std::vector<double>& rows, int64_t B, int64_t H, int64_t cols) {
  at::Tensor out = at::zeros({B, cols}, at::TensorOptions().dtype(at::kDouble));
  double* o = out.data_ptr<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t c = 0; c < cols; ++c) o[b * cols + c] += rows[(b * H + y) * cols + c];
  return out;
}

#if MZ_HAVE_AVX2_PATH
// AVX2 building blocks: four doubles per vector.
MZ_TARGET_AVX2 inline __m256d load4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
MZ_TARGET_AVX2 inline __m256d load4(const double* p) { return _mm256_loadu_pd(p); }
// Four uint8 values widened to 64-bit lanes, for comparisons that mask doubles.
MZ_TARGET_AVX2 inline __m256i load4_u8(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(v));
}
MZ_TARGET_AVX2 inline __m256d abs4(__m256d v) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v); }
MZ_TARGET_AVX2 inline __m256d mask_eq_u8(__m256i v, int value) {
  return _mm256_castsi256_pd(_mm256_cmpeq_epi64(v, _mm256_set1_epi64x(value)));
}
MZ_TARGET_AVX2 inline double hsum4(__m256d v) {
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, v);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

#endif

// ------------------------------------------------------------------ alpha_errors

// kLanes independent partial sums per quantity: the loop vectorises without
// reassociating any one sum, and the result is the same on every CPU path.
constexpr int kLanes = 4;

template <typename scalar_t, bool kTrimap>
MZ_ALWAYS_INLINE void alpha_errors_row_impl(const scalar_t* p, const scalar_t* g, const uint8_t* t, int64_t n,
                                            double* acc) {
  double lane[kAlphaErrorColumns][kLanes] = {};
  auto step = [&](int64_t i, int j) {
    const double pv = p[i], gv = g[i], d = pv - gv;
    lane[kAbsSum][j] += std::abs(d);
    lane[kSqSum][j] += d * d;
    lane[kBadPred][j] += (pv >= 0.0 && pv <= 1.0) ? 0.0 : 1.0;  // NaN counts as bad
    lane[kBadGt][j] += (gv >= 0.0 && gv <= 1.0) ? 0.0 : 1.0;
    if constexpr (kTrimap) {
      const uint8_t tv = t[i];
      const double forced = tv == kTrimapForeground ? 1.0 : (tv == kTrimapBackground ? 0.0 : pv);
      const double df = forced - gv;
      lane[kAbsSumForced][j] += std::abs(df);
      lane[kSqSumForced][j] += df * df;
      lane[kUnknownCount][j] += tv == kTrimapUnknown ? 1.0 : 0.0;
      lane[kBadTrimap][j] +=
          (tv == kTrimapBackground || tv == kTrimapUnknown || tv == kTrimapForeground) ? 0.0 : 1.0;
    }
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) step(i + j, j);
  for (int j = 0; i < n; ++i, ++j) step(i, j);
  for (int c = 0; c < kAlphaErrorColumns; ++c) acc[c] = (lane[c][0] + lane[c][1]) + (lane[c][2] + lane[c][3]);
}

template <typename scalar_t>
void alpha_errors_row_generic(const scalar_t* p, const scalar_t* g, const uint8_t* t, int64_t n, double* acc) {
  if (t != nullptr) alpha_errors_row_impl<scalar_t, true>(p, g, t, n, acc);
  else alpha_errors_row_impl<scalar_t, false>(p, g, t, n, acc);
}

#if MZ_HAVE_AVX2_PATH
template <typename scalar_t>
MZ_TARGET_AVX2 void alpha_errors_row_avx2(const scalar_t* p, const scalar_t* g, const uint8_t* t, int64_t n,
                                          double* acc) {
  const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
  __m256d abs_sum = zero, sq_sum = zero, bad_p = zero, bad_g = zero;
  __m256d abs_forced = zero, sq_forced = zero, unknown = zero, bad_t = zero;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d pv = load4(p + i), gv = load4(g + i), d = _mm256_sub_pd(pv, gv);
    abs_sum = _mm256_add_pd(abs_sum, abs4(d));
    sq_sum = _mm256_fmadd_pd(d, d, sq_sum);
    // Ordered comparisons are false for NaN, so NaN counts as bad.
    const __m256d ok_p = _mm256_and_pd(_mm256_cmp_pd(pv, zero, _CMP_GE_OQ), _mm256_cmp_pd(pv, one, _CMP_LE_OQ));
    const __m256d ok_g = _mm256_and_pd(_mm256_cmp_pd(gv, zero, _CMP_GE_OQ), _mm256_cmp_pd(gv, one, _CMP_LE_OQ));
    bad_p = _mm256_add_pd(bad_p, _mm256_andnot_pd(ok_p, one));
    bad_g = _mm256_add_pd(bad_g, _mm256_andnot_pd(ok_g, one));
    if (t != nullptr) {
      const __m256i tv = load4_u8(t + i);
      const __m256d fg = mask_eq_u8(tv, kTrimapForeground), bg = mask_eq_u8(tv, kTrimapBackground);
      const __m256d unk = mask_eq_u8(tv, kTrimapUnknown);
      const __m256d forced = _mm256_blendv_pd(_mm256_blendv_pd(pv, zero, bg), one, fg);
      const __m256d df = _mm256_sub_pd(forced, gv);
      abs_forced = _mm256_add_pd(abs_forced, abs4(df));
      sq_forced = _mm256_fmadd_pd(df, df, sq_forced);
      unknown = _mm256_add_pd(unknown, _mm256_and_pd(unk, one));
      bad_t = _mm256_add_pd(bad_t, _mm256_andnot_pd(_mm256_or_pd(_mm256_or_pd(fg, bg), unk), one));
    }
  }
  double tail[kAlphaErrorColumns] = {};
  if (i < n && t != nullptr) alpha_errors_row_impl<scalar_t, true>(p + i, g + i, t + i, n - i, tail);
  if (i < n && t == nullptr) alpha_errors_row_impl<scalar_t, false>(p + i, g + i, nullptr, n - i, tail);
  acc[kAbsSum] = hsum4(abs_sum) + tail[kAbsSum];
  acc[kSqSum] = hsum4(sq_sum) + tail[kSqSum];
  acc[kAbsSumForced] = hsum4(abs_forced) + tail[kAbsSumForced];
  acc[kSqSumForced] = hsum4(sq_forced) + tail[kSqSumForced];
  acc[kUnknownCount] = hsum4(unknown) + tail[kUnknownCount];
  acc[kBadPred] = hsum4(bad_p) + tail[kBadPred];
  acc[kBadGt] = hsum4(bad_g) + tail[kBadGt];
  acc[kBadTrimap] = hsum4(bad_t) + tail[kBadTrimap];
}
#endif

template <typename scalar_t>
void alpha_errors_row(const scalar_t* p, const scalar_t* g, const uint8_t* t, int64_t n, bool avx2, double* acc) {
#if MZ_HAVE_AVX2_PATH
  if (avx2) return alpha_errors_row_avx2(p, g, t, n, acc);
#endif
  alpha_errors_row_generic(p, g, t, n, acc);
}

at::Tensor alpha_errors_cpu(const at::Tensor& pred_in, const at::Tensor& gt_in, const std::optional<at::Tensor>& trimap_in) {
  check_alpha_pair("alpha_errors", pred_in, gt_in, trimap_in);
  const at::Tensor pred = pred_in.contiguous(), gt = gt_in.contiguous();
  const at::Tensor trimap = trimap_in.has_value() ? trimap_in->contiguous() : at::Tensor();
  const int64_t B = pred.size(0), H = pred.size(1), W = pred.size(2);
  std::vector<double> rows(static_cast<size_t>(B * H * kAlphaErrorColumns), 0.0);
  const uint8_t* t = trimap.defined() ? trimap.data_ptr<uint8_t>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "alpha_errors_cpu", [&] {
    const scalar_t* p = pred.data_ptr<scalar_t>();
    const scalar_t* g = gt.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(W, 1));
    const bool avx2 = use_avx2();
    at::parallel_for(0, B * H, grain, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t off = row * W;
        alpha_errors_row(p + off, g + off, t != nullptr ? t + off : nullptr, W, avx2,
                         &rows[row * kAlphaErrorColumns]);
      }
    });
  });
  return sum_rows(rows, B, H, kAlphaErrorColumns);
}

// ------------------------------------------------------------------ gradient_error
//
// The filter runs in float32, as P3M's evaluate.py does (gaussian_filter with
// output=np.float32); the squared differences are summed in float64. Against
// the float64 reference that is ~1e-7 relative per gradient value, far inside
// the 1e-4 the metric is held to, at twice the SIMD width.

// Folded taps: out[x] = s[r]·in[x] + Σ_{k<r} s[k]·(in[x+k-r] + in[x+r-k])  (smoothing)
//              out[x] =              Σ_{k<r} d[k]·(in[x+k-r] - in[x+r-k])  (derivative)
struct Taps {
  int r = 0;
  std::array<float, kMaxTaps> s{}, d{};
};

Taps fold_taps(const at::Tensor& smooth_taps, const at::Tensor& deriv_taps) {
  const at::Tensor s = smooth_taps.to(at::kCPU).contiguous(), d = deriv_taps.to(at::kCPU).contiguous();
  const double* sp = s.data_ptr<double>();
  const double* dp = d.data_ptr<double>();
  const int64_t L = s.numel();
  Taps taps;
  taps.r = static_cast<int>(L / 2);
  for (int64_t k = 0; k < L; ++k) {
    TORCH_CHECK_VALUE(sp[k] == sp[L - 1 - k], "gradient_error: smoothing taps must be symmetric");
    TORCH_CHECK_VALUE(dp[k] == -dp[L - 1 - k], "gradient_error: derivative taps must be antisymmetric");
  }
  for (int k = 0; k <= taps.r; ++k) {
    taps.s[k] = static_cast<float>(sp[k]);
    taps.d[k] = static_cast<float>(dp[k]);
  }
  return taps;
}

// What the gradient sees of an input row: optionally pred with the trimap's
// known values forced (1 where 255, 0 where 0), then optionally the per-image
// affine map x * scale + shift in float64 (OpenCV NORM_MINMAX, as mmagic
// normalises before its gradient). Either way the filter gets float32.
struct RowTransform {
  bool force = false, affine = false;
  double scale = 1.0, shift = 0.0;
  bool any() const { return force || affine; }
};

template <typename scalar_t>
inline float transformed(scalar_t v, const uint8_t* trow, int64_t k, const RowTransform& xf) {
  double d = static_cast<double>(v);
  if (xf.force) d = trow[k] == kTrimapForeground ? 1.0 : (trow[k] == kTrimapBackground ? 0.0 : d);
  if (xf.affine) d = d * xf.scale + xf.shift;
  return static_cast<float>(d);
}

// Columns [x0, x0 + n) of a row of width W, extended by r values on each
// side (from the neighbouring columns, or by the border rule at the edges).
// trow is the row's trimap, read only when xf.force.
template <typename scalar_t>
void load_padded_segment(const scalar_t* src, const uint8_t* trow, const RowTransform& xf, int64_t W, int64_t x0,
                         int64_t n, int r, int64_t border, float* pad) {
  // Interior: a plain converting copy; only the ends need the border rule.
  const int64_t lo = std::max<int64_t>(0, r - x0), hi = std::min<int64_t>(n + 2 * r, W - x0 + r);
  auto at = [&](int64_t k) { return xf.any() ? transformed(src[k], trow, k, xf) : static_cast<float>(src[k]); };
  for (int64_t j = 0; j < lo; ++j) pad[j] = at(border_index(x0 + j - r, W, border));
  if (xf.any()) {
    for (int64_t j = lo; j < hi; ++j) pad[j] = transformed(src[x0 - r + j], trow, x0 - r + j, xf);
  } else {
    const scalar_t* from = src + x0 - r;
    for (int64_t j = lo; j < hi; ++j) pad[j] = static_cast<float>(from[j]);
  }
  for (int64_t j = std::max(hi, lo); j < n + 2 * r; ++j) pad[j] = at(border_index(x0 + j - r, W, border));
}

// Horizontal pass: smoothed (S) and differentiated (D) copies of a padded row.
void filter_row_generic(const float* pad, int64_t W, const Taps& t, float* S, float* D) {
  const int r = t.r;
  for (int64_t x = 0; x < W; ++x) {
    float s = t.s[r] * pad[x + r], d = 0.0f;
    for (int k = 0; k < r; ++k) {
      const float lo = pad[x + k], hi = pad[x + 2 * r - k];
      s += t.s[k] * (lo + hi);
      d += t.d[k] * (lo - hi);
    }
    S[x] = s;
    D[x] = d;
  }
}

// Horizontally filtered rows live in a "doubled ring": 2L row blocks, each
// [S_pred | D_pred | S_gt | D_gt] of ld floats, and row j is written to
// blocks j mod L and j mod L + L. The 2r+1 rows around any output row are
// then consecutive blocks, so the vertical pass walks them with one pointer.
enum Plane : int64_t { kSp = 0, kDp = 1, kSg = 2, kDg = 3, kPlanes = 4 };

// Vertical pass and error of one output row: Σ_x mask·(|∇pred| - |∇gt|)².
// `win` points at the block of row y - r; blocks are 4·ld floats apart.
double vertical_row_generic(const float* win, int64_t W, int64_t ld, const Taps& t, const uint8_t* trimap_row,
                            int64_t x0 = 0) {
  const int r = t.r;
  const int64_t stride = kPlanes * ld;
  double sum = 0.0;
  for (int64_t x = x0; x < W; ++x) {
    // ∂/∂y of the x-smoothed rows, and y-smoothing of the x-derivative rows.
    const float* mid = win + r * stride + x;
    float gyp = 0, gyg = 0, gxp = t.s[r] * mid[kDp * ld], gxg = t.s[r] * mid[kDg * ld];
    for (int k = 0; k < r; ++k) {
      const float* a = win + k * stride + x;
      const float* b = win + (2 * r - k) * stride + x;
      gyp += t.d[k] * (a[kSp * ld] - b[kSp * ld]);
      gyg += t.d[k] * (a[kSg * ld] - b[kSg * ld]);
      gxp += t.s[k] * (a[kDp * ld] + b[kDp * ld]);
      gxg += t.s[k] * (a[kDg * ld] + b[kDg * ld]);
    }
    const float e = std::sqrt(gxp * gxp + gyp * gyp) - std::sqrt(gxg * gxg + gyg * gyg);
    if (trimap_row == nullptr || trimap_row[x] == kTrimapUnknown) sum += static_cast<double>(e) * e;
  }
  return sum;
}

#if MZ_HAVE_AVX2_PATH
MZ_TARGET_AVX2 void filter_row_avx2(const float* pad, int64_t W, const Taps& t, float* S, float* D) {
  const int r = t.r;
  int64_t x = 0;
  // 32 pixels per step: 8 independent FMA chains hide the FMA latency.
  for (; x + 32 <= W; x += 32) {
    const __m256 c = _mm256_set1_ps(t.s[r]);
    __m256 s0 = _mm256_mul_ps(c, _mm256_loadu_ps(pad + x + r));
    __m256 s1 = _mm256_mul_ps(c, _mm256_loadu_ps(pad + x + r + 8));
    __m256 s2 = _mm256_mul_ps(c, _mm256_loadu_ps(pad + x + r + 16));
    __m256 s3 = _mm256_mul_ps(c, _mm256_loadu_ps(pad + x + r + 24));
    __m256 d0 = _mm256_setzero_ps(), d1 = d0, d2 = d0, d3 = d0;
    for (int k = 0; k < r; ++k) {
      const __m256 ws = _mm256_set1_ps(t.s[k]), wd = _mm256_set1_ps(t.d[k]);
      const float* lo = pad + x + k;
      const float* hi = pad + x + 2 * r - k;
      const __m256 l0 = _mm256_loadu_ps(lo), h0 = _mm256_loadu_ps(hi);
      const __m256 l1 = _mm256_loadu_ps(lo + 8), h1 = _mm256_loadu_ps(hi + 8);
      const __m256 l2 = _mm256_loadu_ps(lo + 16), h2 = _mm256_loadu_ps(hi + 16);
      const __m256 l3 = _mm256_loadu_ps(lo + 24), h3 = _mm256_loadu_ps(hi + 24);
      s0 = _mm256_fmadd_ps(ws, _mm256_add_ps(l0, h0), s0);
      s1 = _mm256_fmadd_ps(ws, _mm256_add_ps(l1, h1), s1);
      s2 = _mm256_fmadd_ps(ws, _mm256_add_ps(l2, h2), s2);
      s3 = _mm256_fmadd_ps(ws, _mm256_add_ps(l3, h3), s3);
      d0 = _mm256_fmadd_ps(wd, _mm256_sub_ps(l0, h0), d0);
      d1 = _mm256_fmadd_ps(wd, _mm256_sub_ps(l1, h1), d1);
      d2 = _mm256_fmadd_ps(wd, _mm256_sub_ps(l2, h2), d2);
      d3 = _mm256_fmadd_ps(wd, _mm256_sub_ps(l3, h3), d3);
    }
    _mm256_storeu_ps(S + x, s0);
    _mm256_storeu_ps(S + x + 8, s1);
    _mm256_storeu_ps(S + x + 16, s2);
    _mm256_storeu_ps(S + x + 24, s3);
    _mm256_storeu_ps(D + x, d0);
    _mm256_storeu_ps(D + x + 8, d1);
    _mm256_storeu_ps(D + x + 16, d2);
    _mm256_storeu_ps(D + x + 24, d3);
  }
  if (x < W) filter_row_generic(pad + x, W - x, t, S + x, D + x);
}

// (|∇pred| - |∇gt|)² of 8 pixels from their gradient components, masked, added to two float64 sums.
MZ_TARGET_AVX2 inline void add_error8(__m256 gxp, __m256 gyp, __m256 gxg, __m256 gyg, const uint8_t* trimap8,
                                      __m256d& acc_lo, __m256d& acc_hi) {
  const __m256 mp = _mm256_sqrt_ps(_mm256_fmadd_ps(gxp, gxp, _mm256_mul_ps(gyp, gyp)));
  const __m256 mg = _mm256_sqrt_ps(_mm256_fmadd_ps(gxg, gxg, _mm256_mul_ps(gyg, gyg)));
  const __m256 e = _mm256_sub_ps(mp, mg);
  __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(e)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
  lo = _mm256_mul_pd(lo, lo);
  hi = _mm256_mul_pd(hi, hi);
  if (trimap8 != nullptr) {
    lo = _mm256_and_pd(lo, mask_eq_u8(load4_u8(trimap8), kTrimapUnknown));
    hi = _mm256_and_pd(hi, mask_eq_u8(load4_u8(trimap8 + 4), kTrimapUnknown));
  }
  acc_lo = _mm256_add_pd(acc_lo, lo);
  acc_hi = _mm256_add_pd(acc_hi, hi);
}

MZ_TARGET_AVX2 double vertical_row_avx2(const float* win, int64_t W, int64_t ld, const Taps& t,
                                        const uint8_t* trimap_row) {
  const int r = t.r;
  const int64_t stride = kPlanes * ld;
  __m256d acc_lo = _mm256_setzero_pd(), acc_hi = acc_lo;
  const __m256 center = _mm256_set1_ps(t.s[r]);
  int64_t x = 0;
  // 16 pixels per step: eight independent FMA chains.
  for (; x + 16 <= W; x += 16) {
    const float* mid = win + r * stride + x;
    __m256 gyp0 = _mm256_setzero_ps(), gyg0 = gyp0, gyp1 = gyp0, gyg1 = gyp0;
    __m256 gxp0 = _mm256_mul_ps(center, _mm256_loadu_ps(mid + kDp * ld));
    __m256 gxg0 = _mm256_mul_ps(center, _mm256_loadu_ps(mid + kDg * ld));
    __m256 gxp1 = _mm256_mul_ps(center, _mm256_loadu_ps(mid + kDp * ld + 8));
    __m256 gxg1 = _mm256_mul_ps(center, _mm256_loadu_ps(mid + kDg * ld + 8));
    const float* a = win + x;
    const float* b = win + 2 * r * stride + x;
    for (int k = 0; k < r; ++k, a += stride, b -= stride) {
      const __m256 ws = _mm256_set1_ps(t.s[k]), wd = _mm256_set1_ps(t.d[k]);
      gyp0 = _mm256_fmadd_ps(wd, _mm256_sub_ps(_mm256_loadu_ps(a + kSp * ld), _mm256_loadu_ps(b + kSp * ld)), gyp0);
      gyp1 = _mm256_fmadd_ps(wd, _mm256_sub_ps(_mm256_loadu_ps(a + kSp * ld + 8), _mm256_loadu_ps(b + kSp * ld + 8)), gyp1);
      gyg0 = _mm256_fmadd_ps(wd, _mm256_sub_ps(_mm256_loadu_ps(a + kSg * ld), _mm256_loadu_ps(b + kSg * ld)), gyg0);
      gyg1 = _mm256_fmadd_ps(wd, _mm256_sub_ps(_mm256_loadu_ps(a + kSg * ld + 8), _mm256_loadu_ps(b + kSg * ld + 8)), gyg1);
      gxp0 = _mm256_fmadd_ps(ws, _mm256_add_ps(_mm256_loadu_ps(a + kDp * ld), _mm256_loadu_ps(b + kDp * ld)), gxp0);
      gxp1 = _mm256_fmadd_ps(ws, _mm256_add_ps(_mm256_loadu_ps(a + kDp * ld + 8), _mm256_loadu_ps(b + kDp * ld + 8)), gxp1);
      gxg0 = _mm256_fmadd_ps(ws, _mm256_add_ps(_mm256_loadu_ps(a + kDg * ld), _mm256_loadu_ps(b + kDg * ld)), gxg0);
      gxg1 = _mm256_fmadd_ps(ws, _mm256_add_ps(_mm256_loadu_ps(a + kDg * ld + 8), _mm256_loadu_ps(b + kDg * ld + 8)), gxg1);
    }
    add_error8(gxp0, gyp0, gxg0, gyg0, trimap_row != nullptr ? trimap_row + x : nullptr, acc_lo, acc_hi);
    add_error8(gxp1, gyp1, gxg1, gyg1, trimap_row != nullptr ? trimap_row + x + 8 : nullptr, acc_lo, acc_hi);
  }
  return hsum4(_mm256_add_pd(acc_lo, acc_hi)) + (x < W ? vertical_row_generic(win, W, ld, t, trimap_row, x) : 0.0);
}
#endif

// The tile rows [y0, y1) x columns [x0, x1) of one image: Σ per output row
// into row_sums[y * row_step]. Tiles keep the 2r+1-row window of the
// vertical pass (13 x 4 planes x kStripWidth floats) inside the L2 cache.
constexpr int64_t kStripWidth = 512;

template <typename scalar_t>
void gradient_tile(const scalar_t* P, const scalar_t* G, const uint8_t* T, int64_t H, int64_t W, int64_t y0,
                   int64_t y1, int64_t x0, int64_t x1, const Taps& taps, int64_t border, const RowTransform& xf_pred,
                   const RowTransform& xf_gt, bool avx2, double* row_sums, int64_t row_step) {
  const int r = taps.r, L = 2 * r + 1;
  // Planes are ld = n + 16 floats apart: with power-of-two widths the 52 rows
  // of a window would otherwise share a few L1 sets and evict each other.
  const int64_t n = x1 - x0, ld = n + 16, block = kPlanes * ld;
  thread_local std::vector<float> pad, ring;  // reused: no page faults per call
  pad.resize(static_cast<size_t>(n + 2 * r));
  ring.resize(static_cast<size_t>(2 * L * block));
  auto slot = [&](int64_t j) { return (j - (y0 - r)) % L; };
  auto horizontal = [&](int64_t j) {  // filtered copies of logical row j (border-mapped)
    const int64_t src = border_index(j, H, border);
    float* out = ring.data() + slot(j) * block;
    for (int which = 0; which < 2; ++which) {
      load_padded_segment((which == 0 ? P : G) + src * W, T != nullptr ? T + src * W : nullptr,
                          which == 0 ? xf_pred : xf_gt, W, x0, n, r, border, pad.data());
      float* S = out + (which == 0 ? kSp : kSg) * ld;
      float* D = out + (which == 0 ? kDp : kDg) * ld;
#if MZ_HAVE_AVX2_PATH
      if (avx2) {
        filter_row_avx2(pad.data(), n, taps, S, D);
        continue;
      }
#endif
      filter_row_generic(pad.data(), n, taps, S, D);
    }
    std::memcpy(out + L * block, out, static_cast<size_t>(block) * sizeof(float));
  };
  for (int64_t j = y0 - r; j < y0 + r; ++j) horizontal(j);
  for (int64_t y = y0; y < y1; ++y) {
    horizontal(y + r);
    const float* win = ring.data() + slot(y - r) * block;
    const uint8_t* trow = T != nullptr ? T + y * W + x0 : nullptr;
#if MZ_HAVE_AVX2_PATH
    if (avx2) {
      row_sums[y * row_step] = vertical_row_avx2(win, n, ld, taps, trow);
      continue;
    }
#endif
    row_sums[y * row_step] = vertical_row_generic(win, n, ld, taps, trow);
  }
}

// Per image, the affine maps that take the (forced) pred and gt to [0, 1]
// as OpenCV's NORM_MINMAX does, in float64; a constant image maps to 0.
template <typename scalar_t>
void min_max_transforms(const scalar_t* P, const scalar_t* G, const uint8_t* T, int64_t B, int64_t n,
                        bool force_known, std::vector<RowTransform>& xf_pred, std::vector<RowTransform>& xf_gt) {
  constexpr int64_t kChunk = 65536;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // [b][chunk][pred lo, pred hi, gt lo, gt hi]; min and max do not depend on the order.
  std::vector<double> part(static_cast<size_t>(B * chunks * 4));
  at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / chunks, i0 = b * n + task % chunks * kChunk, i1 = std::min(b * n + n, i0 + kChunk);
      double plo = INFINITY, phi = -INFINITY, glo = INFINITY, ghi = -INFINITY;
      for (int64_t i = i0; i < i1; ++i) {
        double p = static_cast<double>(P[i]);
        if (force_known) p = T[i] == kTrimapForeground ? 1.0 : (T[i] == kTrimapBackground ? 0.0 : p);
        const double g = static_cast<double>(G[i]);
        plo = std::min(plo, p);
        phi = std::max(phi, p);
        glo = std::min(glo, g);
        ghi = std::max(ghi, g);
      }
      double* out = part.data() + task * 4;
      out[0] = plo, out[1] = phi, out[2] = glo, out[3] = ghi;
    }
  });
  for (int64_t b = 0; b < B; ++b) {
    double v[4] = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (int64_t c = 0; c < chunks; ++c) {
      const double* q = part.data() + (b * chunks + c) * 4;
      v[0] = std::min(v[0], q[0]), v[1] = std::max(v[1], q[1]), v[2] = std::min(v[2], q[2]), v[3] = std::max(v[3], q[3]);
    }
    for (int which = 0; which < 2; ++which) {
      RowTransform& xf = which == 0 ? xf_pred[b] : xf_gt[b];
      const double lo = v[2 * which], span = v[2 * which + 1] - lo;
      xf.affine = true;
      xf.scale = span > std::numeric_limits<double>::epsilon() ? 1.0 / span : 0.0;
      xf.shift = -lo * xf.scale;
    }
  }
}

at::Tensor gradient_error_cpu(const at::Tensor& pred_in, const at::Tensor& gt_in, const at::Tensor& smooth_taps,
                              const at::Tensor& deriv_taps, int64_t border, const std::optional<at::Tensor>& trimap_in,
                              bool force_known, bool normalize) {
  check_alpha_pair("gradient_error", pred_in, gt_in, trimap_in);
  check_filter(smooth_taps, deriv_taps, border);
  TORCH_CHECK_VALUE(!force_known || trimap_in.has_value(), "gradient_error: force_known needs a trimap");
  const Taps taps = fold_taps(smooth_taps, deriv_taps);
  const at::Tensor pred = pred_in.contiguous(), gt = gt_in.contiguous();
  const at::Tensor trimap = trimap_in.has_value() ? trimap_in->contiguous() : at::Tensor();
  const int64_t B = pred.size(0), H = pred.size(1), W = pred.size(2);
  if (B * H * W == 0) return at::zeros({B}, at::TensorOptions().dtype(at::kDouble));
  const bool avx2 = use_avx2();
  // Tiles of rows x column strips. Each re-filters 2r rows (and columns) of
  // overlap, so keep them tall, but make enough to keep every thread busy.
  // The per-(row, strip) sums are added in a fixed order afterwards.
  const int64_t strips = (W + kStripWidth - 1) / kStripWidth;
  const int64_t want = std::max<int64_t>(1, (4 * at::get_num_threads() + B * strips - 1) / (B * strips));
  const int64_t per_chunk = std::max<int64_t>(std::max<int64_t>(32, 4 * taps.r), (H + want - 1) / want);
  const int64_t chunks = (H + per_chunk - 1) / per_chunk;
  std::vector<double> rows(static_cast<size_t>(B * H * strips), 0.0);
  const uint8_t* T = trimap.defined() ? trimap.data_ptr<uint8_t>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "gradient_error_cpu", [&] {
    const scalar_t* P = pred.data_ptr<scalar_t>();
    const scalar_t* G = gt.data_ptr<scalar_t>();
    std::vector<RowTransform> xf_pred(static_cast<size_t>(B)), xf_gt(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) xf_pred[b].force = force_known;
    if (normalize) min_max_transforms(P, G, T, B, H * W, force_known, xf_pred, xf_gt);
    at::parallel_for(0, B * chunks * strips, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / (chunks * strips), chunk = task / strips % chunks, strip = task % strips;
        const int64_t y0 = chunk * per_chunk, y1 = std::min(H, y0 + per_chunk);
        const int64_t x0 = strip * kStripWidth, x1 = std::min(W, x0 + kStripWidth);
        const int64_t off = b * H * W;
        gradient_tile(P + off, G + off, T != nullptr ? T + off : nullptr, H, W, y0, y1, x0, x1, taps, border,
                      xf_pred[b], xf_gt[b], avx2, rows.data() + b * H * strips + strip, strips);
      }
    });
  });
  const at::Tensor per_strip = sum_rows(rows, B, H, strips);
  at::Tensor out = at::zeros({B}, at::TensorOptions().dtype(at::kDouble));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < strips; ++k) out.data_ptr<double>()[b] += per_strip.data_ptr<double>()[b * strips + k];
  return out;
}

// ------------------------------------------------------------------ connectivity_error
//
// Let lev(x) = #{i in 1..10 : pred(x) >= t_i and gt(x) >= t_i}; the threshold
// set of t_i is M_i = {lev >= i}, and M_10 ⊆ ... ⊆ M_1. The union-find works
// on runs: maximal horizontal segments of one row with one level >= 1. All
// pixels of a run share their level, so they share their component at every
// threshold, and so their l. (The 1080x1920 benchmark pair has 443K pixels
// of level >= 1 in 19K runs: the serial part shrinks twentyfold, while
// levels, runs and the phi sums are computed in parallel over rows.)
//
// Adding the runs level by level from 10 down to 1 to one union-find, the
// sets after step i are exactly the 4-connected components of M_i. Besides
// the path-compressed parent used for finding, we keep the merge tree: each
// root remembers the root it was linked under (tparent) and at which step
// (tlevel). The component of a run in M_i is then the first node on its
// merge-tree path whose link happened below i, and C_i (the largest
// component in pixels, ties to the one whose first pixel comes first in
// raster order, i.e. skimage's label order) is recorded as its root R[i] at
// the end of step i. One walk up that short path (union by size keeps it
// O(log N)) gives every threshold at which the run falls out of the largest
// component. Complexity O(N) for the per-pixel passes plus O(R α(R) log R)
// for the R runs; no per-threshold labelling.
struct ConnScratch {
  // Per-row staging (row y's runs at offset y * W), then the dense run table in raster order.
  std::vector<int32_t> stage_x, stage_len, run_x, run_len, run_row, parent, tparent, order;
  std::vector<int8_t> stage_level, run_level, tlevel;
  template <typename T>
  static T* at_least(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);  // grows only: reused across calls without new page faults
    return v.data();
  }
};

// t_i = i / 10 as the smallest scalar_t >= t_i: for any scalar_t x,
// x >= table[i] exactly when (double)x >= i / 10, so comparisons can stay in
// the input's precision (8 floats per AVX2 compare).
template <typename scalar_t>
std::array<scalar_t, kConnLevels + 1> threshold_table() {
  std::array<scalar_t, kConnLevels + 1> table{};
  for (int i = 0; i <= kConnLevels; ++i) {
    const double t = static_cast<double>(i) / kConnLevels;
    scalar_t v = static_cast<scalar_t>(t);
    if (static_cast<double>(v) < t) v = std::nextafter(v, static_cast<scalar_t>(2));
    table[i] = v;
  }
  return table;
}

// lev = #{i : pred >= t_i and gt >= t_i}, the thresholds being nested.
template <typename scalar_t>
MZ_ALWAYS_INLINE void level_row_impl(const scalar_t* p, const scalar_t* g, int64_t n,
                                     const std::array<scalar_t, kConnLevels + 1>& t, int8_t* out) {
  for (int64_t c = 0; c < n; ++c) {
    const scalar_t lo = std::min(p[c], g[c]);  // NaN: min may pick either; the checks reject NaN anyway
    int8_t lv = 0;
    for (int i = 1; i <= kConnLevels; ++i) lv += lo >= t[i] ? 1 : 0;
    out[c] = lv;
  }
}

template <typename scalar_t>
void level_row_generic(const scalar_t* p, const scalar_t* g, int64_t n, const std::array<scalar_t, kConnLevels + 1>& t,
                       int8_t* out) {
  level_row_impl(p, g, n, t, out);
}

// pred with the trimap's known values forced: 1 where it is 255, 0 where it is 0.
template <typename scalar_t>
void force_known_row(const scalar_t* p, const uint8_t* t, int64_t n, scalar_t* out) {
  for (int64_t c = 0; c < n; ++c)
    out[c] = t[c] == kTrimapForeground ? scalar_t(1) : (t[c] == kTrimapBackground ? scalar_t(0) : p[c]);
}

// Σ |phi(pred) - phi(gt)| over a row, phi(x) = 1 - d·[d >= 0.15], d = x - l.
template <typename scalar_t, bool kMasked>
MZ_ALWAYS_INLINE double phi_row_impl(const scalar_t* p, const scalar_t* g, const double* l, const uint8_t* t,
                                     int64_t n) {
  double lane[kLanes] = {};
  auto step = [&](int64_t c, int j) {
    const double dp = static_cast<double>(p[c]) - l[c], dg = static_cast<double>(g[c]) - l[c];
    const double phi_p = 1.0 - (dp >= kConnPhiCutoff ? dp : 0.0);
    const double phi_g = 1.0 - (dg >= kConnPhiCutoff ? dg : 0.0);
    const double e = std::abs(phi_p - phi_g);
    if constexpr (kMasked) lane[j] += t[c] == kTrimapUnknown ? e : 0.0;
    else lane[j] += e;
  };
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes)
    for (int j = 0; j < kLanes; ++j) step(c + j, j);
  for (int j = 0; c < n; ++c, ++j) step(c, j);
  return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

template <typename scalar_t>
double phi_row_generic(const scalar_t* p, const scalar_t* g, const double* l, const uint8_t* t, int64_t n) {
  return t != nullptr ? phi_row_impl<scalar_t, true>(p, g, l, t, n) : phi_row_impl<scalar_t, false>(p, g, l, t, n);
}

#if MZ_HAVE_AVX2_PATH
template <typename scalar_t>
MZ_TARGET_AVX2 void level_row_avx2(const scalar_t* p, const scalar_t* g, int64_t n,
                                   const std::array<scalar_t, kConnLevels + 1>& t, int8_t* out) {
  level_row_impl(p, g, n, t, out);
}

// float32: 32 pixels per step, counted in int32 lanes (a true compare is -1,
// so subtracting it counts), then packed to int8 in order.
template <>
MZ_TARGET_AVX2 void level_row_avx2<float>(const float* p, const float* g, int64_t n,
                                          const std::array<float, kConnLevels + 1>& t, int8_t* out) {
  __m256 th[kConnLevels];
  for (int i = 0; i < kConnLevels; ++i) th[i] = _mm256_set1_ps(t[i + 1]);
  const __m256i unshuffle = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    __m256i count[4];
    for (int q = 0; q < 4; ++q) {
      const __m256 lo = _mm256_min_ps(_mm256_loadu_ps(p + c + 8 * q), _mm256_loadu_ps(g + c + 8 * q));
      __m256i k = _mm256_setzero_si256();
      for (int i = 0; i < kConnLevels; ++i)
        k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(lo, th[i], _CMP_GE_OQ)));
      count[q] = k;
    }
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(count[0], count[1]),
                                              _mm256_packs_epi32(count[2], count[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm256_permutevar8x32_epi32(packed, unshuffle));
  }
  level_row_impl(p + c, g + c, n - c, t, out + c);
}
template <typename scalar_t>
MZ_TARGET_AVX2 double phi_row_avx2(const scalar_t* p, const scalar_t* g, const double* l, const uint8_t* t, int64_t n) {
  const __m256d one = _mm256_set1_pd(1.0), cutoff = _mm256_set1_pd(kConnPhiCutoff);
  __m256d acc = _mm256_setzero_pd();
  int64_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const __m256d lv = _mm256_loadu_pd(l + c);
    const __m256d dp = _mm256_sub_pd(load4(p + c), lv), dg = _mm256_sub_pd(load4(g + c), lv);
    const __m256d phi_p = _mm256_sub_pd(one, _mm256_and_pd(dp, _mm256_cmp_pd(dp, cutoff, _CMP_GE_OQ)));
    const __m256d phi_g = _mm256_sub_pd(one, _mm256_and_pd(dg, _mm256_cmp_pd(dg, cutoff, _CMP_GE_OQ)));
    __m256d e = abs4(_mm256_sub_pd(phi_p, phi_g));
    if (t != nullptr) e = _mm256_and_pd(e, mask_eq_u8(load4_u8(t + c), kTrimapUnknown));
    acc = _mm256_add_pd(acc, e);
  }
  double sum = hsum4(acc);
  if (c < n) sum += phi_row_generic(p + c, g + c, l + c, t != nullptr ? t + c : nullptr, n - c);
  return sum;
}
#endif

// Splits a row of levels into maximal runs of one level >= 1; returns how many.
int64_t find_runs(const int8_t* lev, int64_t W, int32_t* x0, int32_t* len, int8_t* level) {
  int64_t n = 0;
  for (int64_t x = 0; x < W;) {
    const int8_t lv = lev[x];
    int64_t e = x + 1;
    while (e < W && lev[e] == lv) ++e;
    if (lv > 0) {
      x0[n] = static_cast<int32_t>(x);
      len[n] = static_cast<int32_t>(e - x);
      level[n] = lv;
      ++n;
    }
    x = e;
  }
  return n;
}

template <typename scalar_t>
double conn_image(const scalar_t* P, const scalar_t* G, const uint8_t* T, int64_t H, int64_t W,
                  bool assign_when_empty, bool force_known, bool avx2, ConnScratch& sc) {
  const auto thresholds = threshold_table<scalar_t>();
  const size_t N = static_cast<size_t>(H * W);
  int32_t* stage_x = ConnScratch::at_least(sc.stage_x, N);
  int32_t* stage_len = ConnScratch::at_least(sc.stage_len, N);
  int8_t* stage_level = ConnScratch::at_least(sc.stage_level, N);

  // 1. Levels and runs of each row, in parallel. Only the levels use pred
  // with the known values forced: phi below is summed over trimap == 128,
  // where forcing changes nothing.
  std::vector<int64_t> row_first(static_cast<size_t>(H + 1), 0);
  at::parallel_for(0, H, 16, [&](int64_t begin, int64_t end) {
    std::vector<int8_t> lev(static_cast<size_t>(W));
    std::vector<scalar_t> forced(force_known ? static_cast<size_t>(W) : 0);
    for (int64_t y = begin; y < end; ++y) {
      const scalar_t* p = P + y * W;
      if (force_known) {
        force_known_row(p, T + y * W, W, forced.data());
        p = forced.data();
      }
#if MZ_HAVE_AVX2_PATH
      if (avx2) level_row_avx2(p, G + y * W, W, thresholds, lev.data());
      else
#endif
        level_row_generic(p, G + y * W, W, thresholds, lev.data());
      row_first[y + 1] = find_runs(lev.data(), W, stage_x + y * W, stage_len + y * W, stage_level + y * W);
    }
  });
  for (int64_t y = 0; y < H; ++y) row_first[y + 1] += row_first[y];
  const int64_t R = row_first[H];
  int32_t* run_x = ConnScratch::at_least(sc.run_x, R);
  int32_t* run_len = ConnScratch::at_least(sc.run_len, R);
  int32_t* run_row = ConnScratch::at_least(sc.run_row, R);
  int8_t* run_level = ConnScratch::at_least(sc.run_level, R);
  at::parallel_for(0, H, 64, [&](int64_t begin, int64_t end) {
    for (int64_t y = begin; y < end; ++y) {
      const int64_t first = row_first[y], n = row_first[y + 1] - first;
      std::copy_n(stage_x + y * W, n, run_x + first);
      std::copy_n(stage_len + y * W, n, run_len + first);
      std::copy_n(stage_level + y * W, n, run_level + first);
      std::fill_n(run_row + first, n, static_cast<int32_t>(y));
    }
  });

  // 2. Runs by level, raster order within a level (a counting sort), then the
  // union-find from level 10 down to 1. Serial: its order defines the merge tree.
  int32_t* parent = ConnScratch::at_least(sc.parent, R);  // < 0: a root, holding -(pixels)
  int32_t* tparent = ConnScratch::at_least(sc.tparent, R);  // roots: the component's first run
  int8_t* tlevel = ConnScratch::at_least(sc.tlevel, R);
  int32_t* order = ConnScratch::at_least(sc.order, R);
  std::array<int64_t, kConnLevels + 2> start{};
  for (int64_t r = 0; r < R; ++r) ++start[run_level[r] + 1];
  for (int i = 1; i <= kConnLevels + 1; ++i) start[i] += start[i - 1];
  {
    std::array<int64_t, kConnLevels + 1> next{};
    for (int i = 1; i <= kConnLevels; ++i) next[i] = start[i];
    for (int64_t r = 0; r < R; ++r) order[next[run_level[r]]++] = static_cast<int32_t>(r);
  }

  auto find = [&](int32_t x) {
    while (parent[x] >= 0) {
      const int32_t p = parent[x];
      if (parent[p] < 0) return p;
      parent[x] = parent[p];  // path halving
      x = parent[p];
    }
    return x;
  };
  int64_t best_size = 0;
  int32_t best_first = 0, best_root = -1;
  auto consider = [&](int32_t root) {
    const int64_t size = -static_cast<int64_t>(parent[root]);
    const int32_t first = tparent[root];
    if (size > best_size || (size == best_size && first < best_first)) {
      best_size = size;
      best_first = first;
      best_root = root;
    }
  };
  // Joins the set of `other` to the set whose root is `a`; returns the root of the union.
  auto unite = [&](int32_t a, int32_t other, int level) {
    int32_t b = find(other);
    if (a == b) return a;
    if (parent[a] > parent[b] || (parent[a] == parent[b] && a > b)) std::swap(a, b);  // a: the larger
    const int32_t first = std::min(tparent[a], tparent[b]);
    parent[a] += parent[b];
    parent[b] = a;
    tparent[b] = a;
    tlevel[b] = static_cast<int8_t>(level);
    tparent[a] = first;
    consider(a);
    return a;
  };
  // Unites `root` with the runs of row `y` that share a column with [x0, x1)
  // and have a level of at least `min_level`.
  auto unite_row = [&](int32_t root, int64_t y, int32_t x0, int32_t x1, int min_level, int level) {
    const int32_t* lo = run_x + row_first[y];
    const int32_t* hi = run_x + row_first[y + 1];
    // The first run ending after x0 (runs of a row are disjoint and sorted).
    int64_t k = std::partition_point(lo, hi, [&](const int32_t& x) { return x + run_len[&x - run_x] <= x0; }) - run_x;
    for (; k < row_first[y + 1] && run_x[k] < x1; ++k)
      if (run_level[k] >= min_level) root = unite(root, static_cast<int32_t>(k), level);
    return root;
  };

  std::array<int32_t, kConnLevels + 2> largest;  // R[i]; -1 where M_i is empty
  largest.fill(-1);
  for (int i = kConnLevels; i >= 1; --i) {
    for (int64_t n = start[i]; n < start[i + 1]; ++n) {
      const int32_t q = order[n];
      const int64_t y = run_row[q];
      const int32_t x0 = run_x[q], x1 = run_x[q] + run_len[q];
      parent[q] = -run_len[q];
      tparent[q] = q;
      tlevel[q] = 0;
      consider(q);
      // Runs already in: neighbours of a higher level, and those of level i
      // before q in raster order (the row above). Runs are maximal, so the
      // runs touching q in its own row have other levels.
      int32_t root = q;
      if (q > 0 && run_row[q - 1] == y && run_x[q - 1] + run_len[q - 1] == x0 && run_level[q - 1] > i)
        root = unite(root, q - 1, i);
      if (q + 1 < R && run_row[q + 1] == y && run_x[q + 1] == x1 && run_level[q + 1] > i)
        root = unite(root, q + 1, i);
      if (y > 0) root = unite_row(root, y - 1, x0, x1, i, i);
      if (y + 1 < H) unite_row(root, y + 1, x0, x1, i + 1, i);
    }
    largest[i] = best_root;
  }

  // 3. l(x) = t_{k-1}, k the first threshold at which x is outside C_k; then
  // the phi sums, in parallel over rows. Pixels of level 0 are outside C_1:
  // l = t_0 = 0, or 1 when P3M skips an empty M_1.
  const double l_background = (largest[1] < 0 && !assign_when_empty) ? 1.0 : 0.0;
  auto run_l = [&](int32_t run) {
    const int lv = run_level[run];
    int k = kConnLevels + 1;  // first mismatch, none yet
    int32_t node = run;
    int hi = lv;
    while (true) {
      const int lo = tlevel[node];  // 0 for a root
      for (int i = lo + 1; i <= hi; ++i) {  // node is the run's component root at these steps
        if (largest[i] != node) {
          k = std::min(k, i);
          break;
        }
      }
      if (lo == 0) break;
      hi = lo;
      node = tparent[node];
    }
    if (k <= lv) return static_cast<double>(k - 1) / kConnLevels;
    // In every largest component up to its level: 1 at level 10, or when
    // P3M skips the empty thresholds above lv.
    if (lv == kConnLevels || (largest[lv + 1] < 0 && !assign_when_empty)) return 1.0;
    return static_cast<double>(lv) / kConnLevels;
  };
  std::vector<double> rows(static_cast<size_t>(H), 0.0);
  at::parallel_for(0, H, 16, [&](int64_t begin, int64_t end) {
    std::vector<double> l_row(static_cast<size_t>(W));
    for (int64_t y = begin; y < end; ++y) {
      std::fill(l_row.begin(), l_row.end(), l_background);
      for (int64_t r = row_first[y]; r < row_first[y + 1]; ++r)
        std::fill_n(l_row.begin() + run_x[r], run_len[r], run_l(static_cast<int32_t>(r)));
      const uint8_t* t_row = T != nullptr ? T + y * W : nullptr;
#if MZ_HAVE_AVX2_PATH
      if (avx2) {
        rows[y] = phi_row_avx2(P + y * W, G + y * W, l_row.data(), t_row, W);
        continue;
      }
#endif
      rows[y] = phi_row_generic(P + y * W, G + y * W, l_row.data(), t_row, W);
    }
  });
  double total = 0.0;
  for (double v : rows) total += v;
  return total;
}

at::Tensor connectivity_error_cpu(const at::Tensor& pred_in, const at::Tensor& gt_in,
                                  const std::optional<at::Tensor>& trimap_in, bool assign_when_empty,
                                  bool force_known) {
  check_alpha_pair("connectivity_error", pred_in, gt_in, trimap_in);
  TORCH_CHECK_VALUE(!force_known || trimap_in.has_value(), "connectivity_error: force_known needs a trimap");
  const at::Tensor pred = pred_in.contiguous(), gt = gt_in.contiguous();
  const at::Tensor trimap = trimap_in.has_value() ? trimap_in->contiguous() : at::Tensor();
  const int64_t B = pred.size(0), H = pred.size(1), W = pred.size(2);
  at::Tensor out = at::zeros({B}, at::TensorOptions().dtype(at::kDouble));
  if (H * W == 0) return out;
  double* o = out.data_ptr<double>();
  const uint8_t* T = trimap.defined() ? trimap.data_ptr<uint8_t>() : nullptr;
  const bool avx2 = use_avx2();
  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "connectivity_error_cpu", [&] {
    const scalar_t* P = pred.data_ptr<scalar_t>();
    const scalar_t* G = gt.data_ptr<scalar_t>();
    // One image per task; inside, the per-pixel passes parallelise when B == 1.
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      thread_local ConnScratch scratch;  // reused across calls: no page faults per image
      for (int64_t b = begin; b < end; ++b) {
        const int64_t off = b * H * W;
        o[b] = conn_image(P + off, G + off, T != nullptr ? T + off : nullptr, H, W, assign_when_empty, force_known,
                          avx2, scratch);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("alpha_errors", &alpha_errors_cpu);
  m.impl("gradient_error", &gradient_error_cpu);
  m.impl("connectivity_error", &connectivity_error_cpu);
}

}  // namespace mattezoo::ops::metrics
