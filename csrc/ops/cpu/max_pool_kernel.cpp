// CPU kernels of mattezoo::max_pool2d_with_indices and mattezoo::_max_pool2d_backward.
//
// Every path applies aten's rule while scanning a window in raster order:
// take x when x > best or x is NaN. So the first maximum wins a tie and the
// last NaN wins when there are NaNs. The rule is separable: the best of a
// window is the best (by the same rule, in row order) of its rows' bests.
// The kernel-3 / stride-2 / padding-1 path uses that, computing each input
// row's horizontal triples once, although odd rows belong to two windows.
#include "ops/max_pool.h"
#include "ops/cpu/huge_page_empty.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace mattezoo::ops {
namespace {

// aten's update rule, branch-free.
template <typename acc_t, typename index_t>
inline void take_if_better(acc_t x, index_t xi, acc_t& best, index_t& best_i) {
  const bool t = (x > best) | (x != x);
  best = t ? x : best;
  best_i = t ? xi : best_i;
}

// Best of columns 2*ox-1 .. 2*ox+1 (clipped) of one row, for every ox.
template <typename scalar_t, typename acc_t, typename index_t>
void row_triples(const scalar_t* row, index_t base, int64_t W, int64_t oW, acc_t* hv, index_t* hi) {
  auto edge = [&](int64_t ox) {
    const int64_t c0 = std::max<int64_t>(2 * ox - 1, 0), c1 = std::min<int64_t>(2 * ox + 1, W - 1);
    acc_t v = row[c0];
    index_t i = static_cast<index_t>(c0);
    for (int64_t c = c0 + 1; c <= c1; ++c) take_if_better<acc_t, index_t>(row[c], static_cast<index_t>(c), v, i);
    hv[ox] = v;
    hi[ox] = base + i;
  };
  // Interior: all three columns exist when 1 <= ox and 2*ox+1 <= W-1.
  edge(0);
  int64_t ox = 1;
  const int64_t interior_end = std::min<int64_t>(oW, W >= 2 ? (W - 2) / 2 + 1 : 1);
  for (; ox < interior_end; ++ox) {
    const int64_t c = 2 * ox - 1;
    acc_t v = row[c];
    index_t i = static_cast<index_t>(c);
    take_if_better<acc_t, index_t>(row[c + 1], static_cast<index_t>(c + 1), v, i);
    take_if_better<acc_t, index_t>(row[c + 2], static_cast<index_t>(c + 2), v, i);
    hv[ox] = v;
    hi[ox] = base + i;
  }
  for (; ox < oW; ++ox) edge(ox);
}

template <typename scalar_t, typename index_t>
void pool_nchw_k3s2p1(const at::Tensor& input, at::Tensor& values, at::Tensor& indices) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t planes = input.size(0) * input.size(1);
  const int64_t H = input.size(2), W = input.size(3), oH = values.size(2), oW = values.size(3);
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  scalar_t* ov = values.mutable_data_ptr<scalar_t>();
  index_t* oi = indices.mutable_data_ptr<index_t>();
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, H * W));
  // Positions are tracked in int32 (the caller guarantees H * W fits) and widened
  // on store: int64 lanes would halve the vector width of the combine loops.
  using pos_t = int32_t;
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    // Horizontal bests of rows 2*oy-1 (prev), 2*oy (mid), 2*oy+1 (next).
    std::vector<acc_t> bv(3 * oW);
    std::vector<pos_t> bi(3 * oW);
    acc_t *prev_v = bv.data(), *mid_v = prev_v + oW, *next_v = mid_v + oW;
    pos_t *prev_i = bi.data(), *mid_i = prev_i + oW, *next_i = mid_i + oW;
    for (int64_t p = begin; p < end; ++p) {
      const scalar_t* plane = in + p * H * W;
      scalar_t* pv = ov + p * oH * oW;
      index_t* pi = oi + p * oH * oW;
      for (int64_t oy = 0; oy < oH; ++oy) {
        const int64_t r = 2 * oy;  // always < H for kernel 3, padding 1
        row_triples(plane + r * W, static_cast<pos_t>(r * W), W, oW, mid_v, mid_i);
        const bool has_next = r + 1 < H;
        if (has_next) row_triples(plane + (r + 1) * W, static_cast<pos_t>((r + 1) * W), W, oW, next_v, next_i);
        scalar_t* rv = pv + oy * oW;
        index_t* ri = pi + oy * oW;
        for (int64_t ox = 0; ox < oW; ++ox) {
          acc_t v = oy > 0 ? prev_v[ox] : mid_v[ox];
          pos_t i = oy > 0 ? prev_i[ox] : mid_i[ox];
          if (oy > 0) take_if_better(mid_v[ox], mid_i[ox], v, i);
          if (has_next) take_if_better(next_v[ox], next_i[ox], v, i);
          rv[ox] = static_cast<scalar_t>(v);
          ri[ox] = static_cast<index_t>(i);
        }
        std::swap(prev_v, next_v);  // row 2*oy+1 is row 2*(oy+1)-1
        std::swap(prev_i, next_i);
      }
    }
  });
}

struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw;
};

template <typename scalar_t, typename index_t>
void pool_nchw_generic(const at::Tensor& input, at::Tensor& values, at::Tensor& indices, Geometry g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t planes = input.size(0) * input.size(1);
  const int64_t H = input.size(2), W = input.size(3), oH = values.size(2), oW = values.size(3);
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  scalar_t* ov = values.mutable_data_ptr<scalar_t>();
  index_t* oi = indices.mutable_data_ptr<index_t>();
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, H * W));
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const scalar_t* plane = in + p * H * W;
      for (int64_t oy = 0; oy < oH; ++oy) {
        const int64_t y0 = std::max<int64_t>(oy * g.sh - g.ph, 0), y1 = std::min<int64_t>(oy * g.sh - g.ph + g.kh, H);
        for (int64_t ox = 0; ox < oW; ++ox) {
          const int64_t x0 = std::max<int64_t>(ox * g.sw - g.pw, 0);
          const int64_t x1 = std::min<int64_t>(ox * g.sw - g.pw + g.kw, W);
          acc_t v = plane[y0 * W + x0];
          index_t i = static_cast<index_t>(y0 * W + x0);
          for (int64_t y = y0; y < y1; ++y) {
            for (int64_t x = (y == y0 ? x0 + 1 : x0); x < x1; ++x) {
              take_if_better<acc_t, index_t>(plane[y * W + x], static_cast<index_t>(y * W + x), v, i);
            }
          }
          ov[(p * oH + oy) * oW + ox] = static_cast<scalar_t>(v);
          oi[(p * oH + oy) * oW + ox] = i;
        }
      }
    }
  });
}

// NHWC: one output pixel at a time, vectorised over channels.
template <typename scalar_t, typename index_t>
void pool_nhwc(const at::Tensor& input, at::Tensor& values, at::Tensor& indices, Geometry g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t oH = values.size(2), oW = values.size(3);
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  scalar_t* ov = values.mutable_data_ptr<scalar_t>();
  index_t* oi = indices.mutable_data_ptr<index_t>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, oW * C * g.kh * g.kw));
  at::parallel_for(0, N * oH, grain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> best(C);
    std::vector<index_t> best_i(C);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / oH, oy = row % oH;
      const int64_t y0 = std::max<int64_t>(oy * g.sh - g.ph, 0), y1 = std::min<int64_t>(oy * g.sh - g.ph + g.kh, H);
      for (int64_t ox = 0; ox < oW; ++ox) {
        const int64_t x0 = std::max<int64_t>(ox * g.sw - g.pw, 0), x1 = std::min<int64_t>(ox * g.sw - g.pw + g.kw, W);
        const scalar_t* first = in + ((n * H + y0) * W + x0) * C;
        const index_t first_i = static_cast<index_t>(y0 * W + x0);
        for (int64_t c = 0; c < C; ++c) {
          best[c] = first[c];
          best_i[c] = first_i;
        }
        for (int64_t y = y0; y < y1; ++y) {
          for (int64_t x = (y == y0 ? x0 + 1 : x0); x < x1; ++x) {
            const scalar_t* cell = in + ((n * H + y) * W + x) * C;
            const index_t ci = static_cast<index_t>(y * W + x);
            acc_t* bv = best.data();
            index_t* bi = best_i.data();
            for (int64_t c = 0; c < C; ++c) take_if_better<acc_t, index_t>(cell[c], ci, bv[c], bi[c]);
          }
        }
        scalar_t* vout = ov + ((n * oH + oy) * oW + ox) * C;
        index_t* iout = oi + ((n * oH + oy) * oW + ox) * C;
        for (int64_t c = 0; c < C; ++c) {
          vout[c] = static_cast<scalar_t>(best[c]);
          iout[c] = best_i[c];
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices_cpu(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                              at::IntArrayRef stride, at::IntArrayRef padding,
                                                              at::ScalarType index_dtype) {
  check_max_pool2d_args(input, kernel_size, stride, padding, index_dtype);
  const Geometry g{kernel_size[0], kernel_size[1], stride[0], stride[1], padding[0], padding[1]};
  const int64_t oH = pooled_size(input.size(2), g.kh, g.sh, g.ph);
  const int64_t oW = pooled_size(input.size(3), g.kw, g.sw, g.pw);
  const auto fmt = input.suggest_memory_format();
  const at::Tensor in = input.contiguous(fmt);
  const std::array<int64_t, 4> out_size{input.size(0), input.size(1), oH, oW};
  at::Tensor values = empty_huge_page_backed(out_size, input.options(), fmt);
  at::Tensor indices = empty_huge_page_backed(out_size, input.options().dtype(index_dtype), fmt);
  if (values.numel() == 0) return {values, indices};
  const bool k3s2p1 = g.kh == 3 && g.kw == 3 && g.sh == 2 && g.sw == 2 && g.ph == 1 && g.pw == 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "max_pool2d_with_indices_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(index_dtype, "max_pool2d_with_indices_cpu", [&] {
      if (fmt == at::MemoryFormat::ChannelsLast) {
        pool_nhwc<scalar_t, index_t>(in, values, indices, g);
      } else if (k3s2p1 && in.size(2) * in.size(3) <= INT32_MAX) {
        pool_nchw_k3s2p1<scalar_t, index_t>(in, values, indices);
      } else {
        pool_nchw_generic<scalar_t, index_t>(in, values, indices, g);
      }
    });
  });
  return {values, indices};
}

// grad_input[indices[o]] += grad[o], outputs in raster order per channel (as
// aten does), so the sums are deterministic and bit-identical to torch's.
at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad, const at::Tensor& indices, at::IntArrayRef input_size,
                                   at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding) {
  check_max_pool2d_backward_args(grad, indices, input_size, kernel_size, stride, padding);
  const auto fmt = indices.suggest_memory_format();
  const at::Tensor g = grad.contiguous(fmt);
  const at::Tensor idx = indices.contiguous(fmt);
  const int64_t N = g.size(0), C = g.size(1), oHW = g.size(2) * g.size(3), HW = input_size[0] * input_size[1];
  // at::zeros ignores a memory format in its options; empty honours it.
  at::Tensor gi = at::empty({N, C, input_size[0], input_size[1]}, grad.options().memory_format(fmt)).zero_();
  if (g.numel() == 0) return gi;
  const bool nhwc = fmt == at::MemoryFormat::ChannelsLast;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "max_pool2d_backward_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "max_pool2d_backward_cpu", [&] {
      const scalar_t* gp = g.const_data_ptr<scalar_t>();
      const index_t* ip = idx.const_data_ptr<index_t>();
      scalar_t* op = gi.mutable_data_ptr<scalar_t>();
      auto bad = [&](int64_t t) {
        TORCH_CHECK_INDEX(false, "_max_pool2d_backward: index ", t, " is outside the input plane; valid indices: 0 to ",
                          HW - 1);
      };
      // Channels are independent: split them (NHWC) or whole planes (NCHW) across threads.
      at::parallel_for(0, nhwc ? C : N * C, 1, [&](int64_t begin, int64_t end) {
        if (nhwc) {
          for (int64_t n = 0; n < N; ++n) {
            for (int64_t o = 0; o < oHW; ++o) {
              for (int64_t c = begin; c < end; ++c) {
                const int64_t src = (n * oHW + o) * C + c;
                const int64_t t = ip[src];
                if (t < 0 || t >= HW) bad(t);
                op[(n * HW + t) * C + c] += gp[src];
              }
            }
          }
          return;
        }
        for (int64_t p = begin; p < end; ++p) {
          for (int64_t o = 0; o < oHW; ++o) {
            const int64_t t = ip[p * oHW + o];
            if (t < 0 || t >= HW) bad(t);
            op[p * HW + t] += gp[p * oHW + o];
          }
        }
      });
    });
  });
  return gi;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("max_pool2d_with_indices", &max_pool2d_with_indices_cpu);
  m.impl("_max_pool2d_backward", &max_pool2d_backward_cpu);
}

}  // namespace mattezoo::ops
