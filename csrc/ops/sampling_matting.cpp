// Schemas of the sampling-based matting ops: Gastal & Oliveira's shared
// sampling (2010) and He et al.'s global sampling (2011).
//
// CPU kernels: csrc/ops/cpu/sampling_matting_kernel.cpp (expansion, rays),
// csrc/ops/cpu/shared_sampling_kernel.cpp and
// csrc/ops/cpu/global_sampling_kernel.cpp. Python wrappers with the
// user-facing checks and NumPy fallbacks: mattezoo/classical/sampling.py.
//
// Shared conventions. image: [H,W,3] float64 RGB in [0,1], contiguous.
// labels: [H,W] uint8 with 0 = background, 1 = foreground, 2 = unknown.
// pixels: [N] int64 raster indices (y*W + x) of the unknown pixels, ascending.
// Sample indices are raster indices too; -1 marks "no sample".
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  // Shared sampling step 1: an unknown pixel takes the label of the nearest
  // known pixel q with |p - q| <= radius and |C_p - C_q| <= color_threshold
  // (ties: smaller dy, then dx). Known pixels are read from the input labels.
  m.def("sampling_expand_known(Tensor image, Tensor labels, int radius, float color_threshold) -> Tensor");
  // Shared sampling step 2: num_rays rays per unknown pixel (directions
  // 2*pi*r/num_rays, rotated per pixel by one of nine offsets in each 3x3
  // block), the first foreground and first background pixel on each ray and
  // the gradient energy (sum of squared colour steps) from the pixel to it.
  m.def(
      "sampling_gather_rays(Tensor image, Tensor labels, Tensor pixels, int num_rays)"
      " -> (Tensor fg_index, Tensor bg_index, Tensor fg_energy, Tensor bg_energy)");
  // Shared sampling step 3: per pixel the gathered (F, B) pair minimising
  // N_p^e_n * A_p^e_a * D_p(F)^e_f * D_p(B)^e_b (paper eq. 7).
  m.def(
      "shared_sampling_select(Tensor image, Tensor pixels, Tensor fg_index, Tensor bg_index, Tensor fg_energy,"
      " Tensor bg_energy, float e_n, float e_a, float e_f, float e_b) -> (Tensor fg, Tensor bg)");
  // Shared sampling step 4: the n_best tuples of the k_r closest unknown
  // pixels (within radius sqrt(k_r)) with the smallest distortion M_p, averaged;
  // returns (F^, B^, alpha~, confidence) per pixel.
  m.def(
      "shared_sampling_refine(Tensor image, Tensor labels, Tensor pixels, Tensor fg, Tensor bg, int k_r, int n_best,"
      " float lam) -> (Tensor foreground, Tensor background, Tensor alpha, Tensor confidence)");
  // Shared sampling step 5: confidence-weighted local smoothing over a disc
  // of about m pixels; returns the final alpha of each unknown pixel.
  m.def(
      "shared_sampling_smooth(Tensor image, Tensor labels, Tensor pixels, Tensor foreground, Tensor background,"
      " Tensor alpha, Tensor confidence, float m, float lam) -> Tensor");
  // Global sampling: randomised search (propagation + random search) of the
  // (F, B) sample pair minimising kappa*eps_c + eps_s(F) + eps_s(B) in the
  // space of intensity-sorted boundary samples. fg_dist/bg_dist: [N] distance
  // of each pixel to its nearest foreground/background sample. Returns the
  // chosen positions in fg_samples/bg_samples, the cost and alpha.
  m.def(
      "global_sampling_search(Tensor image, Tensor pixels, Tensor fg_samples, Tensor bg_samples, Tensor fg_dist,"
      " Tensor bg_dist, float kappa, int iterations, int seed)"
      " -> (Tensor fg_choice, Tensor bg_choice, Tensor cost, Tensor alpha)");
}
