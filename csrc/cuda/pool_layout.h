// Helpers shared by the pooling/unpooling CUDA kernels (csrc/ops/cuda/max_*_kernel.cu).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>

#include <algorithm>
#include <cstdint>

namespace mattezoo::cuda {

// Element strides of a contiguous 4-D tensor in NCHW or NHWC memory order, so
// one kernel serves both layouts: the flat thread id walks memory order, and
// (n, c, y, x) are recovered from it.
struct Layout4 {
  int64_t C, H, W;
  bool channels_last;

  C10_HOST_DEVICE int64_t offset(int64_t n, int64_t c, int64_t y, int64_t x) const {
    return channels_last ? ((n * H + y) * W + x) * C + c : ((n * C + c) * H + y) * W + x;
  }
  // Inverse of offset() for a flat position in memory order.
  C10_HOST_DEVICE void coords(int64_t k, int64_t& n, int64_t& c, int64_t& y, int64_t& x) const {
    if (channels_last) {
      c = k % C;
      k /= C;
      x = k % W;
      k /= W;
      y = k % H;
      n = k / H;
    } else {
      x = k % W;
      k /= W;
      y = k % H;
      k /= H;
      c = k % C;
      n = k / C;
    }
  }
};

inline Layout4 layout_of(const at::Tensor& t, bool channels_last) {
  return Layout4{t.size(1), t.size(2), t.size(3), channels_last};
}

constexpr int kThreads = 256;

// Grid for a grid-stride loop over n elements; capped, the loop covers the rest.
inline unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)));
}

}  // namespace mattezoo::cuda
