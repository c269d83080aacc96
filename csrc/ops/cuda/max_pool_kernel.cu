// CUDA kernels of mattezoo::max_pool2d_with_indices and mattezoo::_max_pool2d_backward.
//
// Forward: one thread per output element scans its window in raster order with
// aten's rule (take x when x > best or x is NaN). Backward: one thread per
// input element sums, in raster order of the outputs, the gradients of the
// outputs whose window covers it and whose index names it. A gather with a
// fixed order, so no atomics and the same sums every run.
#include "cuda/pool_layout.h"
#include "ops/max_pool.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace mattezoo::ops {
namespace {

using mattezoo::cuda::blocks_for;
using mattezoo::cuda::kThreads;
using mattezoo::cuda::Layout4;

struct Geometry {
  int kh, kw, sh, sw, ph, pw;
};

template <typename scalar_t, typename index_t>
__global__ void pool_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ values,
                            index_t* __restrict__ indices, Layout4 lin, Layout4 lout, Geometry g, int64_t total) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, c, oy, ox;
    lout.coords(k, n, c, oy, ox);
    const int64_t y0 = max(oy * g.sh - g.ph, int64_t(0)), y1 = min(oy * g.sh - g.ph + g.kh, lin.H);
    const int64_t x0 = max(ox * g.sw - g.pw, int64_t(0)), x1 = min(ox * g.sw - g.pw + g.kw, lin.W);
    acc_t best = static_cast<acc_t>(in[lin.offset(n, c, y0, x0)]);
    int64_t best_i = y0 * lin.W + x0;
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = (y == y0 ? x0 + 1 : x0); x < x1; ++x) {
        const acc_t v = static_cast<acc_t>(in[lin.offset(n, c, y, x)]);
        if (v > best || v != v) {
          best = v;
          best_i = y * lin.W + x;
        }
      }
    }
    values[k] = static_cast<scalar_t>(best);
    indices[k] = static_cast<index_t>(best_i);
  }
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices_cuda(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                               at::IntArrayRef stride, at::IntArrayRef padding,
                                                               at::ScalarType index_dtype) {
  check_max_pool2d_args(input, kernel_size, stride, padding, index_dtype);
  c10::cuda::CUDAGuard guard(input.device());
  const Geometry g{int(kernel_size[0]), int(kernel_size[1]), int(stride[0]),
                   int(stride[1]),      int(padding[0]),     int(padding[1])};
  const int64_t oH = pooled_size(input.size(2), g.kh, g.sh, g.ph);
  const int64_t oW = pooled_size(input.size(3), g.kw, g.sw, g.pw);
  const auto fmt = input.suggest_memory_format();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  const at::Tensor in = input.contiguous(fmt);
  const auto opts = input.options().memory_format(fmt);
  at::Tensor values = at::empty({input.size(0), input.size(1), oH, oW}, opts);
  at::Tensor indices = at::empty({input.size(0), input.size(1), oH, oW}, opts.dtype(index_dtype));
  if (values.numel() == 0) return {values, indices};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "max_pool2d_with_indices_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(index_dtype, "max_pool2d_with_indices_cuda", [&] {
      pool_kernel<scalar_t, index_t><<<blocks_for(values.numel()), kThreads, 0, stream>>>(
          in.const_data_ptr<scalar_t>(), values.mutable_data_ptr<scalar_t>(), indices.mutable_data_ptr<index_t>(),
          mattezoo::cuda::layout_of(in, cl), mattezoo::cuda::layout_of(values, cl), g, values.numel());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {values, indices};
}

template <typename scalar_t, typename index_t>
__global__ void pool_backward_kernel(const scalar_t* __restrict__ grad, const index_t* __restrict__ indices,
                                     scalar_t* __restrict__ gi, Layout4 lin, Layout4 lout, Geometry g,
                                     int64_t total) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, c, y, x;
    lin.coords(k, n, c, y, x);
    const int64_t me = y * lin.W + x;
    // Outputs whose window covers (y, x): o * s - p <= y <= o * s - p + k - 1.
    const int64_t oy0 = max(int64_t(0), (y + g.ph - g.kh + g.sh) / g.sh);
    const int64_t oy1 = min(lout.H - 1, (y + g.ph) / g.sh);
    const int64_t ox0 = max(int64_t(0), (x + g.pw - g.kw + g.sw) / g.sw);
    const int64_t ox1 = min(lout.W - 1, (x + g.pw) / g.sw);
    acc_t sum = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy) {
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const int64_t o = lout.offset(n, c, oy, ox);
        if (indices[o] == me) sum += static_cast<acc_t>(grad[o]);
      }
    }
    gi[k] = static_cast<scalar_t>(sum);
  }
}

at::Tensor max_pool2d_backward_cuda(const at::Tensor& grad, const at::Tensor& indices, at::IntArrayRef input_size,
                                    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding) {
  check_max_pool2d_backward_args(grad, indices, input_size, kernel_size, stride, padding);
  c10::cuda::CUDAGuard guard(grad.device());
  const Geometry g{int(kernel_size[0]), int(kernel_size[1]), int(stride[0]),
                   int(stride[1]),      int(padding[0]),     int(padding[1])};
  const auto fmt = indices.suggest_memory_format();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  const at::Tensor gr = grad.contiguous(fmt);
  const at::Tensor idx = indices.contiguous(fmt);
  at::Tensor gi = at::empty({grad.size(0), grad.size(1), input_size[0], input_size[1]},
                            grad.options().memory_format(fmt));
  if (gi.numel() == 0) return gi;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, gr.scalar_type(), "max_pool2d_backward_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "max_pool2d_backward_cuda", [&] {
      pool_backward_kernel<scalar_t, index_t><<<blocks_for(gi.numel()), kThreads, 0, stream>>>(
          gr.const_data_ptr<scalar_t>(), idx.const_data_ptr<index_t>(), gi.mutable_data_ptr<scalar_t>(),
          mattezoo::cuda::layout_of(gi, cl), mattezoo::cuda::layout_of(gr, cl), g, gi.numel());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return gi;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CUDA, m) {
  m.impl("max_pool2d_with_indices", &max_pool2d_with_indices_cuda);
  m.impl("_max_pool2d_backward", &max_pool2d_backward_cuda);
}

}  // namespace mattezoo::ops
