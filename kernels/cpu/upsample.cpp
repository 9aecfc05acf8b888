// Bilinear upsampling as PyTorch's upsample_bilinear2d (CPU, float arithmetic, no explicit
// scale factor: scale = in/out). For each output row (and likewise column):
//   align_corners true:  src = dst * (in - 1) / (out - 1)      (0 when out == 1)
//   align_corners false: src = max((dst + 0.5) * in / out - 0.5, 0)
//   i0 = floor(src), i1 = i0 + (i0 < in - 1), lambda1 = src - i0, lambda0 = 1 - lambda1.
//   x (n, c, h, w) -> y (n, c, oh, ow)
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

// area_pixel_compute_scale + area_pixel_compute_source_index of PyTorch.
struct LinearTap {
  int i0;
  int i1;
  float lambda0;
  float lambda1;
};

LinearTap linear_tap(int dst, int in_size, int out_size, bool align_corners) {
  float src;
  if (align_corners) {
    const float scale =
        out_size > 1 ? static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1) : 0.0f;
    src = scale * static_cast<float>(dst);
  } else {
    const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
    src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
  }
  // PyTorch's guard_index_and_lambda: float rounding of scale * dst must not step past the edge.
  LinearTap tap;
  tap.i0 = std::min(static_cast<int>(src), in_size - 1);
  tap.i1 = tap.i0 + (tap.i0 < in_size - 1 ? 1 : 0);
  tap.lambda1 = std::min(std::max(src - static_cast<float>(tap.i0), 0.0f), 1.0f);
  tap.lambda0 = 1.0f - tap.lambda1;
  return tap;
}

std::vector<LinearTap> linear_taps(int in_size, int out_size, bool align_corners) {
  std::vector<LinearTap> taps(out_size);
  for (int d = 0; d < out_size; ++d) taps[d] = linear_tap(d, in_size, out_size, align_corners);
  return taps;
}

}  // namespace

void CpuBackend::upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w,
                                             int oh, int ow, bool align_corners) {
  ICH_PROFILE_SCOPE("upsample_bilinear2d_forward");
  checks::upsample_bilinear2d_forward(x, y, n, c, h, w, oh, ow);
  const std::vector<LinearTap> rows = linear_taps(h, oh, align_corners);
  const std::vector<LinearTap> cols = linear_taps(w, ow, align_corners);
#pragma omp parallel for schedule(static) if (int64_t(n) * c * oh * ow > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    const float* in = x + nc * h * w;  // (h, w)
    float* out = y + nc * oh * ow;     // (oh, ow)
    for (int oy = 0; oy < oh; ++oy) {
      const LinearTap& r = rows[oy];
      for (int ox = 0; ox < ow; ++ox) {
        const LinearTap& q = cols[ox];
        out[oy * ow + ox] =
            r.lambda0 * (q.lambda0 * in[r.i0 * w + q.i0] + q.lambda1 * in[r.i0 * w + q.i1]) +
            r.lambda1 * (q.lambda0 * in[r.i1 * w + q.i0] + q.lambda1 * in[r.i1 * w + q.i1]);
      }
    }
  }
}

void CpuBackend::upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h,
                                              int w, int oh, int ow, bool align_corners) {
  ICH_PROFILE_SCOPE("upsample_bilinear2d_backward");
  checks::upsample_bilinear2d_backward(dy, dx, n, c, h, w, oh, ow);
  const std::vector<LinearTap> rows = linear_taps(h, oh, align_corners);
  const std::vector<LinearTap> cols = linear_taps(w, ow, align_corners);
  // Parallel over planes: each (n, c) scatters only into its own plane of dx, in a fixed order.
#pragma omp parallel for schedule(static) if (int64_t(n) * c * oh * ow > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    float* in = dx + nc * h * w;           // (h, w)
    const float* out = dy + nc * oh * ow;  // (oh, ow)
    for (int64_t p = 0; p < int64_t(h) * w; ++p) in[p] = 0.0f;
    for (int oy = 0; oy < oh; ++oy) {
      const LinearTap& r = rows[oy];
      for (int ox = 0; ox < ow; ++ox) {
        const LinearTap& q = cols[ox];
        const float g = out[oy * ow + ox];
        in[r.i0 * w + q.i0] += r.lambda0 * q.lambda0 * g;
        in[r.i0 * w + q.i1] += r.lambda0 * q.lambda1 * g;
        in[r.i1 * w + q.i0] += r.lambda1 * q.lambda0 * g;
        in[r.i1 * w + q.i1] += r.lambda1 * q.lambda1 * g;
      }
    }
  }
}

}  // namespace ich
