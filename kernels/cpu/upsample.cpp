// Bilinear upsampling as PyTorch's upsample_bilinear2d (CPU, float arithmetic, no explicit
// scale factor: scale = in/out). Each output row (and likewise column) reads the two rows of
// its tap, kernels/bilinear_tap.h.
//   x (n, c, h, w) -> y (n, c, oh, ow)
#include <algorithm>
#include <vector>

#include "kernels/bilinear_tap.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

// The taps of every output column as separate arrays, so that a row loop over them
// vectorises (gathers from the input row).
struct ColumnTaps {
  std::vector<int> i0, i1;
  std::vector<float> lambda0, lambda1;
};

std::vector<LinearTap> linear_taps(int in_size, int out_size, bool align_corners) {
  std::vector<LinearTap> taps(out_size);
  for (int d = 0; d < out_size; ++d) taps[d] = linear_tap(d, in_size, out_size, align_corners);
  return taps;
}

ColumnTaps column_taps(int in_size, int out_size, bool align_corners) {
  ColumnTaps t;
  t.i0.resize(out_size);
  t.i1.resize(out_size);
  t.lambda0.resize(out_size);
  t.lambda1.resize(out_size);
  for (int d = 0; d < out_size; ++d) {
    const LinearTap q = linear_tap(d, in_size, out_size, align_corners);
    t.i0[d] = q.i0;
    t.i1[d] = q.i1;
    t.lambda0[d] = q.lambda0;
    t.lambda1[d] = q.lambda1;
  }
  return t;
}

// out (ow) = the input row interpolated along x: q.lambda0 row[q.i0] + q.lambda1 row[q.i1].
void interpolate_row(const float* row, const ColumnTaps& q, int ow, float* out) {
  const int* i0 = q.i0.data();
  const int* i1 = q.i1.data();
  const float* l0 = q.lambda0.data();
  const float* l1 = q.lambda1.data();
#pragma omp simd
  for (int ox = 0; ox < ow; ++ox) out[ox] = l0[ox] * row[i0[ox]] + l1[ox] * row[i1[ox]];
}

}  // namespace

// Forward, per plane: each output row is r.lambda0 h(r.i0) + r.lambda1 h(r.i1), h(iy) the
// input row iy interpolated along x (the same products and sums as the formula above, in the
// same order). Consecutive output rows share input rows, so the last two h are kept.
void CpuBackend::upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w,
                                             int oh, int ow, bool align_corners) {
  ICH_PROFILE_SCOPE("upsample_bilinear2d_forward");
  checks::upsample_bilinear2d_forward(x, y, n, c, h, w, oh, ow);
  const std::vector<LinearTap> rows = linear_taps(h, oh, align_corners);
  const ColumnTaps cols = column_taps(w, ow, align_corners);
#pragma omp parallel if (int64_t(n) * c * oh * ow > cpu::kParallelThreshold)
  {
    std::vector<float> buffer(2 * size_t(ow));  // h of two input rows (ow each)
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
      const float* in = x + nc * h * w;  // (h, w)
      float* out = y + nc * oh * ow;     // (oh, ow)
      float* h0 = buffer.data();
      float* h1 = buffer.data() + ow;
      int row0 = -1, row1 = -1;  // the input rows in h0, h1
      for (int oy = 0; oy < oh; ++oy) {
        const LinearTap& r = rows[oy];
        if (row0 != r.i0) {
          if (row1 == r.i0) {
            std::swap(h0, h1);
            std::swap(row0, row1);
          } else {
            interpolate_row(in + int64_t(r.i0) * w, cols, ow, h0);
            row0 = r.i0;
          }
        }
        if (row1 != r.i1) {
          interpolate_row(in + int64_t(r.i1) * w, cols, ow, h1);
          row1 = r.i1;
        }
        const float a = r.lambda0, b = r.lambda1;
        float* o = out + int64_t(oy) * ow;  // (ow)
#pragma omp simd
        for (int ox = 0; ox < ow; ++ox) o[ox] = a * h0[ox] + b * h1[ox];
      }
    }
  }
}

// Backward, per plane (each (n, c) writes only its own plane of dx, in a fixed order): an
// output row's gradient is first scattered along x into one input-width row
// t[q.i0] += q.lambda0 g, t[q.i1] += q.lambda1 g, then added to dx rows r.i0 and r.i1 with
// weights r.lambda0 and r.lambda1 (vectorised).
void CpuBackend::upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h,
                                              int w, int oh, int ow, bool align_corners) {
  ICH_PROFILE_SCOPE("upsample_bilinear2d_backward");
  checks::upsample_bilinear2d_backward(dy, dx, n, c, h, w, oh, ow);
  const std::vector<LinearTap> rows = linear_taps(h, oh, align_corners);
  const std::vector<LinearTap> cols = linear_taps(w, ow, align_corners);
#pragma omp parallel if (int64_t(n) * c * oh * ow > cpu::kParallelThreshold)
  {
    std::vector<float> buffer(static_cast<size_t>(w));  // t (w)
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
      float* in = dx + nc * h * w;           // (h, w)
      const float* out = dy + nc * oh * ow;  // (oh, ow)
      float* t = buffer.data();
      std::fill(in, in + int64_t(h) * w, 0.0f);
      for (int oy = 0; oy < oh; ++oy) {
        const LinearTap& r = rows[oy];
        const float* g = out + int64_t(oy) * ow;  // (ow)
        std::fill(t, t + w, 0.0f);
        for (int ox = 0; ox < ow; ++ox) {
          const LinearTap& q = cols[ox];
          t[q.i0] += q.lambda0 * g[ox];
          t[q.i1] += q.lambda1 * g[ox];
        }
        float* d0 = in + int64_t(r.i0) * w;  // (w)
        float* d1 = in + int64_t(r.i1) * w;  // (w)
        const float a = r.lambda0, b = r.lambda1;
        // d0 and d1 are the same row at the bottom edge (i1 == i0): two loops, not one.
#pragma omp simd
        for (int ix = 0; ix < w; ++ix) d0[ix] += a * t[ix];
#pragma omp simd
        for (int ix = 0; ix < w; ++ix) d1[ix] += b * t[ix];
      }
    }
  }
}

}  // namespace ich
