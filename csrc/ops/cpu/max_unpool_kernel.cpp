// CPU kernels of mattezoo::max_unpool2d and mattezoo::_max_unpool2d_backward.
//
// Forward, both layouts: a raster-order scatter onto memory zeroed just ahead
// of it (see scatter_plane_streaming; NHWC scatters per block of channels).
// All paths are exact for any valid indices (the last write in raster order
// wins), deterministic, and reject out-of-range ones.
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

namespace mattezoo::ops {
namespace {

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

// NHWC: the streaming scatter of the NCHW path, per block of channels. Each
// thread owns whole cache lines of every pixel (kChannelBlock channels) and
// scatters its block in raster order, zeroing the output rows that input row y
// can reach (up to 2y+1) just before it, while they are in cache. So each
// channel's writes happen in raster order on zeroed memory, the last write
// wins, and the output is written to memory once. An index beyond the zeroed
// rows (not from a stride-2 pool) zeroes the rest of the block's plane first.
template <typename scalar_t, typename index_t>
void unpool_nhwc(const at::Tensor& input, const at::Tensor& indices, at::Tensor& out) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t oH = out.size(2), oW = out.size(3), oHW = oH * oW;
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const index_t* idx = indices.const_data_ptr<index_t>();
  scalar_t* o = out.mutable_data_ptr<scalar_t>();
  constexpr int64_t kLine = 64;  // bytes
  const int64_t block = std::max<int64_t>(1, kLine / static_cast<int64_t>(sizeof(scalar_t)));
  const int64_t blocks = (C + block - 1) / block;
  at::parallel_for(0, N * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t n = b / blocks, c0 = (b % blocks) * block, nc = std::min(C, c0 + block) - c0;
      const scalar_t* vin = in + n * H * W * C + c0;
      const index_t* iin = idx + n * H * W * C + c0;
      scalar_t* vout = o + n * oHW * C + c0;
      int64_t zeroed = 0;  // output pixels [0, zeroed) of this block are zero or written
      auto zero_to = [&](int64_t upto) {
        for (int64_t p = zeroed; p < upto; ++p) std::fill(vout + p * C, vout + p * C + nc, scalar_t(0));
        zeroed = upto;
      };
      for (int64_t y = 0; y < H; ++y) {
        const int64_t need = std::min(oHW, (kUnpoolStride * y + kUnpoolReach + 1) * oW);
        if (need > zeroed) zero_to(need);
        for (int64_t x = 0; x < W; ++x) {
          const int64_t src = (y * W + x) * C;
          for (int64_t c = 0; c < nc; ++c) {
            const int64_t t = iin[src + c];
            if (static_cast<uint64_t>(t) >= static_cast<uint64_t>(zeroed)) {
              if (t < 0 || t >= oHW) bad_index(t, oHW);
              zero_to(oHW);
            }
            vout[t * C + c] = vin[src + c];
          }
        }
      }
      zero_to(oHW);
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
