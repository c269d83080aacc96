// Schema of mattezoo::estimate_foreground_ml, multi-level foreground and
// background estimation (Germer, Uelwer, Conrad, Harmeling 2021, "Fast
// multi-level foreground estimation"). CPU kernel:
// csrc/ops/cpu/foreground_kernel.cpp; Python wrapper and a NumPy reference:
// mattezoo/classical/foreground.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  // image: [H,W,C] float32 in [0,1] (1 <= C <= 16); alpha: [H,W] float32 in
  // [0,1]. Returns foreground and background, both [H,W,C] float32 in [0,1].
  m.def(
      "estimate_foreground_ml(Tensor image, Tensor alpha, float regularization, int n_small_iterations,"
      " int n_big_iterations, int small_size, float gradient_weight) -> (Tensor foreground, Tensor background)");
}
