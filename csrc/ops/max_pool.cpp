// Schema and argument checks of mattezoo::max_pool2d_with_indices and its backward.
//
// Values and indices equal aten's max_pool2d_with_indices (ceil_mode=False,
// dilation 1): windows scanned in raster order, the first maximum wins a tie,
// a NaN always wins (the last NaN when several). Indices are int64 or int32
// flat positions within each input plane. Kernels: cpu/max_pool_kernel.cpp,
// cuda/max_pool_kernel.cu; autograd and fake kernels in mattezoo/ops/max_pool.py.
#include "ops/max_pool.h"

#include <torch/library.h>

namespace mattezoo::ops {

namespace {
bool is_float(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

void check_geometry(const char* op, at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding) {
  TORCH_CHECK_VALUE(kernel_size.size() == 2 && stride.size() == 2 && padding.size() == 2, op,
                    ": kernel_size, stride and padding must each have 2 entries");
  for (int d = 0; d < 2; ++d) {
    TORCH_CHECK_VALUE(kernel_size[d] >= 1 && stride[d] >= 1 && padding[d] >= 0, op,
                      ": need kernel_size >= 1, stride >= 1, padding >= 0; got ", kernel_size, ", ", stride, ", ",
                      padding);
    TORCH_CHECK_VALUE(2 * padding[d] <= kernel_size[d], op, ": padding ", padding,
                      " must be at most half of kernel_size ", kernel_size);
  }
}
}  // namespace

void check_max_pool2d_args(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::ScalarType index_dtype) {
  TORCH_CHECK_VALUE(input.dim() == 4, "max_pool2d_with_indices: input must be 4-D (N, C, H, W), got ", input.dim(),
                    "-D");
  TORCH_CHECK_VALUE(is_float(input.scalar_type()), "max_pool2d_with_indices: input dtype ", input.scalar_type(),
                    " is not one of float16, bfloat16, float32, float64");
  TORCH_CHECK_VALUE(index_dtype == at::kLong || index_dtype == at::kInt,
                    "max_pool2d_with_indices: index_dtype ", index_dtype, " is not one of int32, int64");
  check_geometry("max_pool2d_with_indices", kernel_size, stride, padding);
  for (int d = 0; d < 2; ++d) {
    TORCH_CHECK_VALUE(pooled_size(input.size(2 + d), kernel_size[d], stride[d], padding[d]) >= 1,
                      "max_pool2d_with_indices: input ", input.sizes(), " with padding ", padding,
                      " is smaller than kernel_size ", kernel_size);
  }
  if (index_dtype == at::kInt) {
    TORCH_CHECK_VALUE(input.size(2) * input.size(3) <= INT32_MAX, "max_pool2d_with_indices: a plane of ",
                      input.size(2), "x", input.size(3), " is too large for int32 indices");
  }
}

void check_max_pool2d_backward_args(const at::Tensor& grad, const at::Tensor& indices, at::IntArrayRef input_size,
                                    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding) {
  TORCH_CHECK_VALUE(grad.dim() == 4 && grad.sizes() == indices.sizes(), "_max_pool2d_backward: grad ", grad.sizes(),
                    " and indices ", indices.sizes(), " must be 4-D of equal shape");
  TORCH_CHECK_VALUE(is_float(grad.scalar_type()), "_max_pool2d_backward: grad dtype ", grad.scalar_type(),
                    " is not one of float16, bfloat16, float32, float64");
  TORCH_CHECK_VALUE(indices.scalar_type() == at::kLong || indices.scalar_type() == at::kInt,
                    "_max_pool2d_backward: indices dtype ", indices.scalar_type(), " is not one of int32, int64");
  TORCH_CHECK_VALUE(grad.device() == indices.device(), "_max_pool2d_backward: grad is on ", grad.device(),
                    " but indices are on ", indices.device());
  TORCH_CHECK_VALUE(input_size.size() == 2, "_max_pool2d_backward: input_size must be (H, W)");
  check_geometry("_max_pool2d_backward", kernel_size, stride, padding);
  for (int d = 0; d < 2; ++d) {
    TORCH_CHECK_VALUE(pooled_size(input_size[d], kernel_size[d], stride[d], padding[d]) == grad.size(2 + d),
                      "_max_pool2d_backward: grad ", grad.sizes(), " does not come from pooling an input of ",
                      input_size);
  }
}

}  // namespace mattezoo::ops

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  m.def(
      "max_pool2d_with_indices(Tensor input, int[2] kernel_size, int[2] stride, int[2] padding, "
      "ScalarType index_dtype) -> (Tensor, Tensor)");
  // Gradient w.r.t. input: grad added into the positions named by indices
  // (overlapping windows that picked one input add up).
  m.def(
      "_max_pool2d_backward(Tensor grad, Tensor indices, SymInt[2] input_size, int[2] kernel_size, int[2] stride, "
      "int[2] padding) -> Tensor");
}
