// CPU kernels of mattezoo::max_unpool2d and mattezoo::_max_unpool2d_backward.
//
// NCHW forward: a raster-order scatter onto memory zeroed just ahead of it
// (see scatter_plane_streaming). NHWC forward: a gather, vectorised over
// channels, in which every output element is written once from the inputs
// whose stride-2 window covers it (at most 2 x 2, see kUnpoolStride in
// max_unpool.h), checked in raster order so the last match wins; it counts
// its matches, and when some index lies outside its window the output is
// redone as zero-fill plus raster-order scatter. All paths are exact for any
// valid indices, deterministic, and reject out-of-range ones.
//
// Large outputs are mapped on transparent huge pages (huge_page_empty.h): on
// the CI VM faulting in a fresh 256 MB output in 4 KiB pages cost more than
// the unpool itself.
#include "ops/max_unpool.h"
#include "ops/cpu/huge_page_empty.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>

namespace mattezoo::ops {
namespace {

// Input coordinates along one axis whose window covers output coordinate o:
// i with 2i - 1 <= o <= 2i + 1, i.e. o / 2 .. (o + 1) / 2.
static_assert(kUnpoolStride == 2 && kUnpoolReach == 1, "cover() below assumes stride 2, reach 1");
inline int64_t cover_lo(int64_t o) { return o / 2; }
inline int64_t cover_hi(int64_t o) { return (o + 1) / 2; }

[[noreturn]] void bad_index(int64_t value, int64_t plane_size) {
  TORCH_CHECK_INDEX(false, "max_unpool2d: index ", value, " is outside the output plane; valid indices: 0 to ",
                    plane_size - 1);
}

// NCHW: raster-order scatter that zeroes the output just ahead of its writes.
// A stride-2 window of input row y reaches output rows up to 2y+1, so those
// rows are zeroed (while in cache) right before row y is scattered; an index
// beyond the zeroed frontier (not from such a pool) zeroes the rest of the
// plane first. Every write lands on zeroed memory, in raster order, so the
// result equals aten's for any indices, with one pass over the output in
// memory. Measured faster on CPU than the gather (whose candidate checks do
// not vectorise), which the NHWC path and the CUDA kernel use instead.
template <typename scalar_t, typename index_t>
void scatter_plane_streaming(const scalar_t* in, const index_t* idx, scalar_t* out, int64_t H, int64_t W,
                             int64_t oH, int64_t oW) {
  const int64_t oHW = oH * oW;
  int64_t zeroed = 0;  // out[0, zeroed) is zero or already written
  for (int64_t y = 0; y < H; ++y) {
    const int64_t need = std::min(oHW, (kUnpoolStride * y + kUnpoolReach + 1) * oW);
    if (need > zeroed) {
      std::fill(out + zeroed, out + need, scalar_t(0));
      zeroed = need;
    }
    const index_t* irow = idx + y * W;
    const scalar_t* vrow = in + y * W;
    for (int64_t x = 0; x < W; ++x) {
      const int64_t t = irow[x];
      if (static_cast<uint64_t>(t) >= static_cast<uint64_t>(zeroed)) {
        if (t < 0 || t >= oHW) bad_index(t, oHW);
        std::fill(out + zeroed, out + oHW, scalar_t(0));
        zeroed = oHW;
      }
      out[t] = vrow[x];
    }
  }
  std::fill(out + zeroed, out + oHW, scalar_t(0));
}

template <typename scalar_t, typename index_t>
void unpool_nchw(const at::Tensor& input, const at::Tensor& indices, at::Tensor& out) {
  const int64_t planes = input.size(0) * input.size(1);
  const int64_t H = input.size(2), W = input.size(3), oH = out.size(2), oW = out.size(3);
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const index_t* idx = indices.const_data_ptr<index_t>();
  scalar_t* o = out.mutable_data_ptr<scalar_t>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, oH * oW));
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      scatter_plane_streaming(in + p * H * W, idx + p * H * W, o + p * oH * oW, H, W, oH, oW);
    }
  });
}

// NHWC: the same gather, vectorised over channels of one output pixel.
template <typename scalar_t, typename index_t>
void unpool_nhwc(const at::Tensor& input, const at::Tensor& indices, at::Tensor& out) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t oH = out.size(2), oW = out.size(3);
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const index_t* idx = indices.const_data_ptr<index_t>();
  scalar_t* o = out.mutable_data_ptr<scalar_t>();
  std::atomic<int64_t> matches{0};
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, oW * C));
  at::parallel_for(0, N * oH, grain, [&](int64_t begin, int64_t end) {
    int64_t local = 0;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / oH, oy = row % oH;
      const int64_t ylo = cover_lo(oy), yhi = std::min(cover_hi(oy), H - 1);
      for (int64_t ox = 0; ox < oW; ++ox) {
        scalar_t* op = o + ((n * oH + oy) * oW + ox) * C;
        std::fill(op, op + C, scalar_t(0));
        const index_t target = static_cast<index_t>(oy * oW + ox);
        const int64_t xlo = cover_lo(ox), xhi = std::min(cover_hi(ox), W - 1);
        for (int64_t y = ylo; y <= yhi; ++y) {
          for (int64_t x = xlo; x <= xhi; ++x) {
            const int64_t src = ((n * H + y) * W + x) * C;
            const scalar_t* vp = in + src;
            const index_t* ip = idx + src;
            for (int64_t c = 0; c < C; ++c) {
              const bool m = ip[c] == target;
              op[c] = m ? vp[c] : op[c];
              local += m;
            }
          }
        }
      }
    }
    matches += local;
  });
  if (matches.load() == N * C * H * W) return;
  // Some index is outside its window: zero everything and scatter, each
  // channel range in raster order so the last write wins.
  const int64_t HW = H * W, oHW = oH * oW;
  std::fill(o, o + out.numel(), scalar_t(0));
  at::parallel_for(0, C, std::max<int64_t>(1, C / 8), [&](int64_t c0, int64_t c1) {
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t p = 0; p < HW; ++p) {
        const int64_t src = (n * HW + p) * C;
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t t = idx[src + c];
          if (t < 0 || t >= oHW) bad_index(t, oHW);
          o[(n * oHW + t) * C + c] = in[src + c];
        }
      }
    }
  });
}

at::Tensor max_unpool2d_cpu(const at::Tensor& input, const at::Tensor& indices, at::IntArrayRef output_size) {
  check_max_unpool2d_args(input, indices, output_size);
  const auto fmt = input.suggest_memory_format();
  const at::Tensor in = input.contiguous(fmt);
  const at::Tensor idx = indices.contiguous(fmt);
  at::Tensor out = empty_huge_page_backed({input.size(0), input.size(1), output_size[0], output_size[1]},
                                          input.options(), fmt);
  if (out.numel() == 0) return out;
  if (in.numel() == 0) return out.zero_();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "max_unpool2d_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "max_unpool2d_cpu", [&] {
      if (fmt == at::MemoryFormat::ChannelsLast) {
        unpool_nhwc<scalar_t, index_t>(in, idx, out);
      } else {
        unpool_nchw<scalar_t, index_t>(in, idx, out);
      }
    });
  });
  return out;
}

// grad_input[n, c, p] = grad[n, c, indices[n, c, p]]: a gather in either layout.
at::Tensor max_unpool2d_backward_cpu(const at::Tensor& grad, const at::Tensor& indices) {
  check_max_unpool2d_backward_args(grad, indices);
  const auto fmt = indices.suggest_memory_format();
  const at::Tensor idx = indices.contiguous(fmt);
  const at::Tensor g = grad.contiguous(fmt);
  at::Tensor gi = at::empty(indices.sizes(), grad.options().memory_format(fmt));
  if (gi.numel() == 0) return gi;
  const int64_t C = idx.size(1), HW = idx.size(2) * idx.size(3), gHW = g.size(2) * g.size(3);
  const bool nhwc = fmt == at::MemoryFormat::ChannelsLast;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "max_unpool2d_backward_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "max_unpool2d_backward_cpu", [&] {
      const scalar_t* gp = g.const_data_ptr<scalar_t>();
      const index_t* ip = idx.const_data_ptr<index_t>();
      scalar_t* op = gi.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, gi.numel(), 32768, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t t = ip[k];
          if (t < 0 || t >= gHW) bad_index(t, gHW);
          const int64_t src = nhwc ? ((k / (HW * C)) * gHW + t) * C + k % C : (k / HW) * gHW + t;
          op[k] = gp[src];
        }
      });
    });
  });
  return gi;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("max_unpool2d", &max_unpool2d_cpu);
  m.impl("_max_unpool2d_backward", &max_unpool2d_backward_cpu);
}

}  // namespace mattezoo::ops
