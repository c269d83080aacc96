// CPU kernels of the first two shared-sampling steps (Gastal & Oliveira 2010,
// sections 4.1-4.2): expansion of the known regions and sample gathering
// along rays. Schemas: csrc/ops/sampling_matting.cpp.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>

#include "sampling_matting_kernel.h"

namespace {

using namespace mattezoo_sampling;

// Every unknown pixel looks for the nearest known pixel within `radius` whose
// colour is within `color_threshold`, and takes its label. Only the input
// labels count as known, so the result does not depend on the visiting order.
at::Tensor sampling_expand_known_cpu(const at::Tensor& image, const at::Tensor& labels, int64_t radius,
                                     double color_threshold) {
  check_image(image);
  check_labels(labels, image);
  TORCH_CHECK(radius >= 0, "radius must be >= 0, got ", radius);
  const int64_t height = image.size(0), width = image.size(1);
  const double* img = image.data_ptr<double>();
  const uint8_t* in = labels.data_ptr<uint8_t>();
  at::Tensor result = labels.clone();
  uint8_t* out = result.data_ptr<uint8_t>();
  const auto offsets = disc_offsets(static_cast<double>(radius) * static_cast<double>(radius));
  const double threshold2 = color_threshold * color_threshold;
  at::parallel_for(0, height, 8, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const int64_t p = y * width + x;
        if (in[p] != kUnknown) continue;
        for (const Offset& o : offsets) {
          const int64_t qy = y + o.dy, qx = x + o.dx;
          if (qy < 0 || qy >= height || qx < 0 || qx >= width) continue;
          const int64_t q = qy * width + qx;
          if (in[q] == kUnknown) continue;
          if (color_dist2(img + 3 * p, img + 3 * q) <= threshold2) {
            out[p] = in[q];
            break;
          }
        }
      }
  });
  return result;
}

// Rays leave pixel p in directions theta_r = sector * (j / 9) + sector * r,
// sector = 2 pi / num_rays, where j = 3 (y mod 3) + (x mod 3) rotates the set
// differently for each pixel of a 3x3 block (the paper's per-pixel rotation,
// so that neighbours, which share their samples later, look in different
// directions). A ray advances one pixel per step along its major axis,
// visiting round(p + s u), u = (cos, sin) / max(|cos|, |sin|), s = 1, 2, ...,
// until it leaves the image or has met both a foreground and a background
// pixel. The energy to a sample sums |C(q_s) - C(q_{s-1})|^2 along the way
// (the discrete form of the paper's integral of |grad I . dr|^2).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> sampling_gather_rays_cpu(const at::Tensor& image,
                                                                                    const at::Tensor& labels,
                                                                                    const at::Tensor& pixels,
                                                                                    int64_t num_rays) {
  check_image(image);
  check_labels(labels, image);
  TORCH_CHECK(num_rays >= 1, "num_rays must be >= 1, got ", num_rays);
  TORCH_CHECK(pixels.dim() == 1 && pixels.scalar_type() == at::kLong && pixels.is_contiguous(),
              "pixels must be a contiguous [N] int64 tensor");
  const int64_t height = image.size(0), width = image.size(1), n = pixels.size(0);
  const double* img = image.data_ptr<double>();
  const uint8_t* lab = labels.data_ptr<uint8_t>();
  const int64_t* pix = pixels.data_ptr<int64_t>();
  check_indices(pix, n, height * width, false, "pixels");
  auto fg_index = at::full({n, num_rays}, -1, at::kLong);
  auto bg_index = at::full({n, num_rays}, -1, at::kLong);
  auto fg_energy = at::zeros({n, num_rays}, at::kDouble);
  auto bg_energy = at::zeros({n, num_rays}, at::kDouble);
  int64_t* fgi = fg_index.data_ptr<int64_t>();
  int64_t* bgi = bg_index.data_ptr<int64_t>();
  double* fge = fg_energy.data_ptr<double>();
  double* bge = bg_energy.data_ptr<double>();
  const double sector = 2.0 * M_PI / static_cast<double>(num_rays);
  at::parallel_for(0, n, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t y = pix[i] / width, x = pix[i] % width;
      const double j = static_cast<double>(3 * (y % 3) + x % 3);
      for (int64_t r = 0; r < num_rays; ++r) {
        const double theta = sector * (j / 9.0) + sector * static_cast<double>(r);
        const double cx = std::cos(theta), cy = std::sin(theta);
        const double major = std::max(std::fabs(cx), std::fabs(cy));
        const double ux = cx / major, uy = cy / major;
        bool found_fg = false, found_bg = false;
        double energy = 0.0;
        const double* prev = img + 3 * pix[i];
        for (int64_t s = 1;; ++s) {
          const int64_t qx = static_cast<int64_t>(std::floor(static_cast<double>(x) + static_cast<double>(s) * ux + 0.5));
          const int64_t qy = static_cast<int64_t>(std::floor(static_cast<double>(y) + static_cast<double>(s) * uy + 0.5));
          if (qx < 0 || qx >= width || qy < 0 || qy >= height) break;
          const int64_t q = qy * width + qx;
          const double* cur = img + 3 * q;
          energy += color_dist2(cur, prev);
          prev = cur;
          if (!found_fg && lab[q] == kForeground) {
            fgi[i * num_rays + r] = q;
            fge[i * num_rays + r] = energy;
            found_fg = true;
          } else if (!found_bg && lab[q] == kBackground) {
            bgi[i * num_rays + r] = q;
            bge[i * num_rays + r] = energy;
            found_bg = true;
          }
          if (found_fg && found_bg) break;
        }
      }
    }
  });
  return {fg_index, bg_index, fg_energy, bg_energy};
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("sampling_expand_known", &sampling_expand_known_cpu);
  m.impl("sampling_gather_rays", &sampling_gather_rays_cpu);
}
