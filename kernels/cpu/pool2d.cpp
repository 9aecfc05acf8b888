// Max pooling as PyTorch's CPU max_pool2d_with_indices (floor mode, no dilation):
// the window of output (oy, ox) starts at (oy*stride - pad, ox*stride - pad) and is clipped
// to the image (padding counts as -inf). Scanning the window row-major, an element replaces
// the running maximum when it is greater or NaN, so ties keep the first maximum and a NaN
// propagates (the last NaN's index is kept, as PyTorch).
//   x (n, c, h, w) -> y, argmax (n, c, out_h, out_w); argmax = y_in * w + x_in in its plane.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/ceil_div.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

// One output (oy, ox) of a plane, the window clipped to the image: the definition above.
void max_pool2d_window(const float* plane, const Pool2dShape& s, int y_begin, int y_end, int ox,
                       float* out, int32_t* idx) {
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
  *out = best;
  *idx = best_index;
}

}  // namespace

// Per output row, the columns whose window lies inside the image along x are done together:
// the window is scanned in the same row-major order, each step a vectorised compare-and-select
// over the whole row of outputs (v != v is isnan). Edge columns go through max_pool2d_window.
void CpuBackend::max_pool2d_forward(const float* x, float* y, int32_t* argmax,
                                    const Pool2dShape& s) {
  ICH_PROFILE_SCOPE("max_pool2d_forward");
  checks::max_pool2d_forward(x, y, argmax, s);
  const int oh = s.out_h(), ow = s.out_w();
  // Interior columns [ox_lo, ox_hi): ox * stride_w - pad_w >= 0 and ... + kw <= w.
  const int ox_lo = std::min(ceil_div(s.pad_w, s.stride_w), ow);
  const int ox_hi =
      s.w + s.pad_w - s.kw >= 0 ? std::min((s.w + s.pad_w - s.kw) / s.stride_w + 1, ow) : 0;
#pragma omp parallel for schedule(static) if (int64_t(s.n) * s.c * s.h * s.w > \
                                              cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(s.n) * s.c; ++nc) {
    const float* plane = x + nc * s.h * s.w;  // (h, w)
    float* out = y + nc * oh * ow;            // (out_h, out_w)
    int32_t* idx = argmax + nc * oh * ow;     // (out_h, out_w)
    for (int oy = 0; oy < oh; ++oy) {
      const int y_begin = std::max(oy * s.stride_h - s.pad_h, 0);
      const int y_end = std::min(oy * s.stride_h - s.pad_h + s.kh, s.h);
      float* o = out + int64_t(oy) * ow;     // (out_w)
      int32_t* id = idx + int64_t(oy) * ow;  // (out_w)
      for (int ox = 0; ox < std::min(ox_lo, ow); ++ox)
        max_pool2d_window(plane, s, y_begin, y_end, ox, o + ox, id + ox);
      const int stride = s.stride_w, pad = s.pad_w, w = s.w;
#pragma omp simd
      for (int ox = ox_lo; ox < ox_hi; ++ox) {
        o[ox] = -std::numeric_limits<float>::infinity();
        id[ox] = y_begin * w + ox * stride - pad;
      }
      for (int yy = y_begin; yy < y_end; ++yy) {
        for (int kx = 0; kx < s.kw; ++kx) {
          const float* row = plane + int64_t(yy) * w;  // (w)
          const int32_t base = yy * w + kx - pad;
#pragma omp simd
          for (int ox = ox_lo; ox < ox_hi; ++ox) {
            const float v = row[ox * stride + kx - pad];
            const bool take = v > o[ox] || v != v;
            o[ox] = take ? v : o[ox];
            id[ox] = take ? base + ox * stride : id[ox];
          }
        }
      }
      for (int ox = std::max(ox_hi, ox_lo); ox < ow; ++ox)
        max_pool2d_window(plane, s, y_begin, y_end, ox, o + ox, id + ox);
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
