// Schema of comprehensive sampling's pair selection (Shahrian, Rajan, Price,
// Cohen, "Improving Image Matting using Comprehensive Sampling Sets", CVPR
// 2013): per unknown pixel, the (F, B) pair of candidate clusters that
// maximises the paper's objective.
//
// CPU kernel: csrc/ops/cpu/comprehensive_sampling_kernel.cpp. Python wrapper
// with the user-facing checks and a NumPy fallback:
// mattezoo/classical/comprehensive.py (select_candidate_pairs).
//
// image: [H,W,3] float64 RGB in [0,1], contiguous. pixels: [N] int64 raster
// indices of the unknown pixels. fg_level/bg_level: [N] int64, the sampling
// level of each pixel (which band of the foreground/background it draws its
// candidates from). The candidates of all levels are stacked: level l owns
// rows fg_offsets[l] .. fg_offsets[l+1]-1 of fg_mean [KF,3] (cluster mean
// colour, [0,1]), fg_std [KF,3] (per-channel standard deviation, [0,1]) and
// fg_pos [KF,2] (mean position, (y, x) in pixels); likewise for the background.
//
// For pixel z with colour I and candidate pair (F_i, B_j):
//   alpha  = (I - B).(F - B) / |F - B|^2   (not clamped; the pair is valid when
//            -tolerance <= alpha <= 1 + tolerance and F != B)
//   K      = exp(-color_scale |I - (alpha F + (1 - alpha) B)|)  chromatic distortion
//   S      = exp(-|z - z_Fi| / D_F) exp(-|z - z_Bj| / D_B), D_F (D_B) the mean
//            distance from z to the candidates of its level      spatial term
//   C      = d(F_i, B_j) / max over the level pair of d, d the mean over the
//            channels of |mu_F - mu_B| / sqrt((sd_F^2 + sd_B^2) / 2), the pooled
//            deviation floored at std_floor                       colour statistics
//   O      = K^e_k S^e_s C^e_c.
// A pixel with fewer than min_valid valid pairs of O > 0 gets alpha 0.5,
// objective 0 and choices -1. Returns the chosen rows of the stacked candidate
// arrays, alpha (clamped to [0,1]) and O of the chosen pair.
//
// comprehensive_gmm_labels clusters the samples of a band: EM for a Gaussian
// mixture whose components share one diagonal covariance, started from the
// given means (k-means++ seeds drawn in Python) with uniform weights and the
// data's variance, stopped when the log-likelihood gains less than tol
// relative or after max_iter rounds; components that lose all their mass are
// dropped. x: [N,D] float64, of which the first n_fit rows are fitted (a
// sample: large bands need not be fitted whole); means: [K,D] float64.
// Returns [N] int64 labels of all rows (component of largest posterior,
// numbered among the surviving components).
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  m.def("comprehensive_gmm_labels(Tensor x, Tensor means, int n_fit, int max_iter, float tol) -> Tensor");
  m.def(
      "comprehensive_sampling_select(Tensor image, Tensor pixels, Tensor fg_level, Tensor bg_level,"
      " Tensor fg_offsets, Tensor fg_mean, Tensor fg_std, Tensor fg_pos, Tensor bg_offsets, Tensor bg_mean,"
      " Tensor bg_std, Tensor bg_pos, float e_k, float e_s, float e_c, float color_scale, float tolerance,"
      " float std_floor, int min_valid) -> (Tensor fg_choice, Tensor bg_choice, Tensor alpha, Tensor objective)");
}
