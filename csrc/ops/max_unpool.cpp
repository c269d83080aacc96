// Schema and argument checks of mattezoo::max_unpool2d and its backward.
//
// max_unpool2d(input, indices, output_size) has the semantics of aten's CPU
// max_unpool2d: zeros everywhere except at indices, and "last write wins" in
// raster order where indices repeat. Kernels: cpu/max_unpool_kernel.cpp,
// cuda/max_unpool_kernel.cu. Autograd and the fake kernel are registered from
// Python (mattezoo/ops/max_unpool.py).
#include "ops/max_unpool.h"

#include <torch/library.h>

namespace mattezoo::ops {

namespace {
bool is_float(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}
bool is_index(at::ScalarType t) { return t == at::kLong || t == at::kInt; }
}  // namespace

void check_max_unpool2d_args(const at::Tensor& input, const at::Tensor& indices, at::IntArrayRef output_size) {
  TORCH_CHECK_VALUE(input.dim() == 4, "max_unpool2d: input must be 4-D (N, C, H, W), got ", input.dim(), "-D");
  TORCH_CHECK_VALUE(is_float(input.scalar_type()),
                    "max_unpool2d: input dtype ", input.scalar_type(), " is not one of float16, bfloat16, float32, float64");
  TORCH_CHECK_VALUE(is_index(indices.scalar_type()),
                    "max_unpool2d: indices dtype ", indices.scalar_type(), " is not one of int32, int64");
  TORCH_CHECK_VALUE(indices.sizes() == input.sizes(), "max_unpool2d: indices shape ", indices.sizes(),
                    " must equal input shape ", input.sizes());
  TORCH_CHECK_VALUE(input.device() == indices.device(), "max_unpool2d: input is on ", input.device(),
                    " but indices are on ", indices.device());
  TORCH_CHECK_VALUE(output_size.size() == 2, "max_unpool2d: output_size must be (H, W), got ", output_size);
  TORCH_CHECK_VALUE(output_size[0] > 0 && output_size[1] > 0,
                    "max_unpool2d: output_size must be positive, got ", output_size);
  if (indices.scalar_type() == at::kInt) {
    TORCH_CHECK_VALUE(output_size[0] * output_size[1] <= INT32_MAX,
                      "max_unpool2d: an output plane of ", output_size, " is too large for int32 indices");
  }
}

void check_max_unpool2d_backward_args(const at::Tensor& grad, const at::Tensor& indices) {
  TORCH_CHECK_VALUE(grad.dim() == 4 && indices.dim() == 4, "_max_unpool2d_backward: grad and indices must be 4-D");
  TORCH_CHECK_VALUE(is_float(grad.scalar_type()), "_max_unpool2d_backward: grad dtype ", grad.scalar_type(),
                    " is not one of float16, bfloat16, float32, float64");
  TORCH_CHECK_VALUE(is_index(indices.scalar_type()), "_max_unpool2d_backward: indices dtype ",
                    indices.scalar_type(), " is not one of int32, int64");
  TORCH_CHECK_VALUE(grad.size(0) == indices.size(0) && grad.size(1) == indices.size(1),
                    "_max_unpool2d_backward: grad ", grad.sizes(), " and indices ", indices.sizes(),
                    " disagree in batch or channels");
  TORCH_CHECK_VALUE(grad.device() == indices.device(), "_max_unpool2d_backward: grad is on ", grad.device(),
                    " but indices are on ", indices.device());
}

}  // namespace mattezoo::ops

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  m.def("max_unpool2d(Tensor input, Tensor indices, SymInt[2] output_size) -> Tensor");
  // Gradient w.r.t. input: grad gathered at indices (every input, as torch does).
  m.def("_max_unpool2d_backward(Tensor grad, Tensor indices) -> Tensor");
}
