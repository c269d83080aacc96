// CUDA kernels of mattezoo::max_unpool2d and mattezoo::_max_unpool2d_backward.
//
// Forward, fast path: one thread per output element gathers from the inputs
// whose stride-2 window covers it (<= 2 x 2, see max_unpool.h), in raster
// order so the last match wins, and writes the element exactly once. Threads
// also count matching indices (an integer counter, so the count is exact);
// fewer matches than inputs means some index lies outside its window, and
// the general path redoes the output: range check, then per output the
// largest raster position targeting it (atomicMax on a winner map, order
// independent), then one gather. Results never depend on thread timing, and
// they equal the CPU kernel's and aten's CPU kernel's.
#include "cuda/pool_layout.h"
#include "ops/max_unpool.h"

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace mattezoo::ops {
namespace {

using mattezoo::cuda::blocks_for;
using mattezoo::cuda::kThreads;
using mattezoo::cuda::Layout4;

template <typename scalar_t, typename index_t>
__global__ void unpool_gather_kernel(const scalar_t* __restrict__ in, const index_t* __restrict__ idx,
                                     scalar_t* __restrict__ out, Layout4 lin, Layout4 lout, int64_t total,
                                     unsigned long long* matches) {
  unsigned long long local = 0;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, c, oy, ox;
    lout.coords(k, n, c, oy, ox);
    const index_t target = static_cast<index_t>(oy * lout.W + ox);
    const int64_t ylo = oy / 2, yhi = min((oy + 1) / 2, lin.H - 1);
    const int64_t xlo = ox / 2, xhi = min((ox + 1) / 2, lin.W - 1);
    scalar_t v = scalar_t(0);
    for (int64_t y = ylo; y <= yhi; ++y) {
      for (int64_t x = xlo; x <= xhi; ++x) {
        const int64_t src = lin.offset(n, c, y, x);
        if (idx[src] == target) {
          v = in[src];
          ++local;
        }
      }
    }
    out[k] = v;
  }
  // Warp-sum, then one atomic per warp on an integer counter.
  for (int s = 16; s > 0; s /= 2) local += __shfl_down_sync(0xffffffffu, local, s);
  if ((threadIdx.x & 31) == 0 && local) atomicAdd(matches, local);
}

// Winner map: for each output, the largest raster position (within its input plane) that targets it.
template <typename index_t>
__global__ void unpool_winner_kernel(const index_t* __restrict__ idx, int* __restrict__ winner, Layout4 lin,
                                     int64_t out_plane, int64_t total) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, c, y, x;
    lin.coords(k, n, c, y, x);
    const int64_t t = idx[k];
    if (t < 0 || t >= out_plane) continue;  // rejected on the host before launch; never out of bounds
    atomicMax(winner + (n * lin.C + c) * out_plane + t, static_cast<int>(y * lin.W + x));
  }
}

template <typename scalar_t>
__global__ void unpool_from_winner_kernel(const scalar_t* __restrict__ in, const int* __restrict__ winner,
                                          scalar_t* __restrict__ out, Layout4 lin, Layout4 lout, int64_t total) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, c, oy, ox;
    lout.coords(k, n, c, oy, ox);
    const int w = winner[((n * lout.C + c) * lout.H + oy) * lout.W + ox];
    out[k] = w >= 0 ? in[lin.offset(n, c, w / lin.W, w % lin.W)] : scalar_t(0);
  }
}

void check_index_range(const at::Tensor& idx, int64_t plane) {
  auto [lo, hi] = at::aminmax(idx);
  const int64_t low = lo.item<int64_t>(), high = hi.item<int64_t>();
  const int64_t bad = low < 0 ? low : high;
  TORCH_CHECK_INDEX(low >= 0 && high < plane, "max_unpool2d: index ", bad,
                    " is outside the output plane; valid indices: 0 to ", plane - 1);
}

at::Tensor max_unpool2d_cuda(const at::Tensor& input, const at::Tensor& indices, at::IntArrayRef output_size) {
  check_max_unpool2d_args(input, indices, output_size);
  TORCH_CHECK_VALUE(input.size(2) * input.size(3) <= INT32_MAX, "max_unpool2d: input plane too large");
  c10::cuda::CUDAGuard guard(input.device());
  const auto fmt = input.suggest_memory_format();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  const at::Tensor in = input.contiguous(fmt);
  const at::Tensor idx = indices.contiguous(fmt);
  at::Tensor out = at::empty({input.size(0), input.size(1), output_size[0], output_size[1]},
                             input.options().memory_format(fmt));
  if (out.numel() == 0) return out;
  if (in.numel() == 0) return out.zero_();
  const Layout4 lin = mattezoo::cuda::layout_of(in, cl), lout = mattezoo::cuda::layout_of(out, cl);
  const int64_t total = out.numel(), plane = output_size[0] * output_size[1];
  auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor matches = at::zeros({1}, input.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "max_unpool2d_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "max_unpool2d_cuda", [&] {
      unpool_gather_kernel<scalar_t, index_t><<<blocks_for(total), kThreads, 0, stream>>>(
          in.const_data_ptr<scalar_t>(), idx.const_data_ptr<index_t>(), out.mutable_data_ptr<scalar_t>(), lin, lout,
          total, reinterpret_cast<unsigned long long*>(matches.mutable_data_ptr<int64_t>()));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (matches.item<int64_t>() == in.numel()) return out;

  // General path: some index is outside its window (or invalid).
  check_index_range(idx, plane);
  at::Tensor winner = at::full({total}, -1, input.options().dtype(at::kInt));
  AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "max_unpool2d_cuda_winner", [&] {
    unpool_winner_kernel<index_t><<<blocks_for(in.numel()), kThreads, 0, stream>>>(
        idx.const_data_ptr<index_t>(), winner.mutable_data_ptr<int>(), lin, plane, in.numel());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "max_unpool2d_cuda_write", [&] {
    unpool_from_winner_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
        in.const_data_ptr<scalar_t>(), winner.const_data_ptr<int>(), out.mutable_data_ptr<scalar_t>(), lin, lout,
        total);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

template <typename scalar_t, typename index_t>
__global__ void unpool_backward_kernel(const scalar_t* __restrict__ grad, const index_t* __restrict__ idx,
                                       scalar_t* __restrict__ gi, Layout4 lin, Layout4 lgrad, int64_t total) {
  const int64_t plane = lgrad.H * lgrad.W;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, c, y, x;
    lin.coords(k, n, c, y, x);
    const int64_t t = idx[k];
    // Indices come from a forward call that validated them; stay in bounds regardless.
    gi[k] = (t >= 0 && t < plane) ? grad[lgrad.offset(n, c, t / lgrad.W, t % lgrad.W)] : scalar_t(0);
  }
}

at::Tensor max_unpool2d_backward_cuda(const at::Tensor& grad, const at::Tensor& indices) {
  check_max_unpool2d_backward_args(grad, indices);
  c10::cuda::CUDAGuard guard(grad.device());
  const auto fmt = indices.suggest_memory_format();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  const at::Tensor g = grad.contiguous(fmt);
  const at::Tensor idx = indices.contiguous(fmt);
  at::Tensor gi = at::empty(indices.sizes(), grad.options().memory_format(fmt));
  if (gi.numel() == 0) return gi;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "max_unpool2d_backward_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "max_unpool2d_backward_cuda", [&] {
      unpool_backward_kernel<scalar_t, index_t><<<blocks_for(gi.numel()), kThreads, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), idx.const_data_ptr<index_t>(), gi.mutable_data_ptr<scalar_t>(),
          mattezoo::cuda::layout_of(idx, cl), mattezoo::cuda::layout_of(g, cl), gi.numel());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return gi;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CUDA, m) {
  m.impl("max_unpool2d", &max_unpool2d_cuda);
  m.impl("_max_unpool2d_backward", &max_unpool2d_backward_cuda);
}

}  // namespace mattezoo::ops
