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

namespace {

void check_pool_shape(const Pool2dShape& s, const char* op) {
  ICH_CHECK(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.kh > 0 && s.kw > 0,
            op << ": sizes must be positive, got n=" << s.n << " c=" << s.c << " h=" << s.h
               << " w=" << s.w << " kernel " << s.kh << "x" << s.kw);
  ICH_CHECK(s.stride_h > 0 && s.stride_w > 0,
            op << ": stride must be > 0, got " << s.stride_h << "x" << s.stride_w);
  // PyTorch's rule; it also guarantees every window holds at least one real element.
  ICH_CHECK(s.pad_h >= 0 && s.pad_w >= 0 && s.pad_h <= s.kh / 2 && s.pad_w <= s.kw / 2,
            op << ": padding " << s.pad_h << "x" << s.pad_w
               << " must be >= 0 and at most half the kernel " << s.kh << "x" << s.kw);
  ICH_CHECK(s.h + 2 * s.pad_h >= s.kh && s.w + 2 * s.pad_w >= s.kw,
            op << ": kernel " << s.kh << "x" << s.kw << " is larger than the padded input "
               << s.h + 2 * s.pad_h << "x" << s.w + 2 * s.pad_w);
}

}  // namespace

void CpuBackend::max_pool2d_forward(const float* x, float* y, int32_t* argmax,
                                    const Pool2dShape& s) {
  check_pool_shape(s, "max_pool2d_forward");
  ICH_CHECK(x != nullptr && y != nullptr && argmax != nullptr,
            "max_pool2d_forward: x, y and argmax must not be null");
  ICH_CHECK(int64_t(s.h) * s.w <= std::numeric_limits<int32_t>::max(),
            "max_pool2d_forward: a " << s.h << "x" << s.w << " plane overflows the int32 argmax");
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
  check_pool_shape(s, "max_pool2d_backward");
  ICH_CHECK(dy != nullptr && argmax != nullptr && dx != nullptr,
            "max_pool2d_backward: dy, argmax and dx must not be null");
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
