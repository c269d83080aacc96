// Shared declarations of mattezoo::max_unpool2d (schema in max_unpool.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

namespace mattezoo::ops {

// Geometry the gather fast path assumes: input (iy, ix) may only target output
// rows 2*iy-1 .. 2*iy+1 and columns 2*ix-1 .. 2*ix+1. That holds for indices
// from any stride-2 pool with kernel <= 3 and padding <= 1 (P3M-Net's k3/s2/p1
// and the classic k2/s2/p0). Kernels verify it, and fall back to an ordinary
// zero-fill-and-scatter when some index lies outside its window.
constexpr int64_t kUnpoolStride = 2;
constexpr int64_t kUnpoolReach = 1;  // window = stride * i - reach .. stride * i + reach

// Throw a c10::Error naming the problem unless the arguments are usable.
// Index values are checked by the kernels while they read them.
void check_max_unpool2d_args(const at::Tensor& input, const at::Tensor& indices, at::IntArrayRef output_size);
void check_max_unpool2d_backward_args(const at::Tensor& grad, const at::Tensor& indices);

}  // namespace mattezoo::ops
