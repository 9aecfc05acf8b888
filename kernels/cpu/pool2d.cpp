// Max pooling as PyTorch's CPU max_pool2d_with_indices (floor mode, no dilation):
// the window of output (oy, ox) starts at (oy*stride - pad, ox*stride - pad) and is clipped
// to the image (padding counts as -inf). Scanning the window row-major, an element replaces
// the running maximum when it is greater or NaN, so ties keep the first maximum and a NaN
// propagates (the last NaN's index is kept, as PyTorch).
//   x (n, c, h, w) -> y, argmax (n, c, out_h, out_w); argmax = y_in * w + x_in in its plane.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::max_pool2d_forward(const float* x, float* y, int32_t* argmax,
                                    const Pool2dShape& s) {
  ICH_PROFILE_SCOPE("max_pool2d_forward");
  checks::max_pool2d_forward(x, y, argmax, s);
  const int oh = s.out_h(), ow = s.out_w();
#pragma omp parallel for schedule(static) if (int64_t(s.n) * s.c * s.h * s.w > \
                                              cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(s.n) * s.c; ++nc) {
    const float* plane = x + nc * s.h * s.w;  // (h, w)
    float* out = y + nc * oh * ow;            // (out_h, out_w)
    int32_t* idx = argmax + nc * oh * ow;     // (out_h, out_w)
    for (int oy = 0; oy < oh; ++oy) {
      const int y_begin = std::max(oy * s.stride_h - s.pad_h, 0);
      const int y_end = std::min(oy * s.stride_h - s.pad_h + s.kh, s.h);
      for (int ox = 0; ox < ow; ++ox) {
        const int x_begin = std::max(ox * s.stride_w - s.pad_w, 0);
        const int x_end = std::min(ox * s.stride_w - s.pad_w + s.kw, s.w);
        float best = -std::numeric_limits<float>::infinity();
        int32_t best_index = y_begin * s.w + x_begin;
        for (int yy = y_begin; yy < y_end; ++yy) {
          for (int xx = x_begin; xx < x_end; ++xx) {
            const float v = plane[yy * s.w + xx];
            if (v > best || std::isnan(v)) {
              best = v;
              best_index = yy * s.w + xx;
            }
          }
        }
        out[oy * ow + ox] = best;
        idx[oy * ow + ox] = best_index;
      }
    }
  }
}

void CpuBackend::max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx,
                                     const Pool2dShape& s) {
  ICH_PROFILE_SCOPE("max_pool2d_backward");
  checks::max_pool2d_backward(dy, argmax, dx, s);
  const int64_t plane_size = int64_t(s.h) * s.w;
  const int64_t out_size = int64_t(s.out_h()) * s.out_w();
  int64_t bad_index = -1;
  // Parallel over planes: each (n, c) writes only its own plane of dx, in a fixed order.
#pragma omp parallel for schedule(static) if (int64_t(s.n) * s.c * plane_size > \
                                              cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(s.n) * s.c; ++nc) {
    float* plane = dx + nc * plane_size;  // (h, w)
    for (int64_t p = 0; p < plane_size; ++p) plane[p] = 0.0f;
    const float* grad = dy + nc * out_size;       // (out_h, out_w)
    const int32_t* idx = argmax + nc * out_size;  // (out_h, out_w)
    for (int64_t o = 0; o < out_size; ++o) {
      if (idx[o] < 0 || idx[o] >= plane_size) {
#pragma omp atomic write
        bad_index = idx[o];
        continue;
      }
      plane[idx[o]] += grad[o];
    }
  }
  ICH_CHECK(bad_index == -1, "max_pool2d_backward: argmax holds " << bad_index << ", outside the "
                                                                  << s.h << "x" << s.w << " plane");
}

}  // namespace ich
