// Shared declarations of mattezoo::max_pool2d_with_indices (schema in max_pool.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

namespace mattezoo::ops {

// Output extent along one axis: floor((in + 2 * pad - kernel) / stride) + 1, as torch (ceil_mode=False).
inline int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

// Throw a c10::Error naming the problem unless the arguments are usable.
void check_max_pool2d_args(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::ScalarType index_dtype);
void check_max_pool2d_backward_args(const at::Tensor& grad, const at::Tensor& indices, at::IntArrayRef input_size,
                                    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding);

}  // namespace mattezoo::ops
