// im2col / col2im of one image, no dilation.
//   x   (c, h, w)
//   col (c*kh*kw, out_h*out_w): row r = (ci*kh + i)*kw + j, column q = oy*out_w + ox holds
//       x[ci, oy*stride_h - pad_h + i, ox*stride_w - pad_w + j], zero outside the image.
#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::im2col(const float* x, float* col, const Conv2dShape& s) {
  ICH_PROFILE_SCOPE("im2col");
  checks::im2col(x, col, s);
  const int oh = s.out_h(), ow = s.out_w();
  const int64_t rows = s.col_rows();
#pragma omp parallel for schedule(static) if (rows * oh * ow > cpu::kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const int j = static_cast<int>(r % s.kw);
    const int i = static_cast<int>((r / s.kw) % s.kh);
    const int64_t ci = r / (int64_t(s.kw) * s.kh);
    const float* plane = x + ci * s.h * s.w;  // (h, w)
    float* out = col + r * oh * ow;           // (out_h, out_w)
    for (int oy = 0; oy < oh; ++oy) {
      const int y = oy * s.stride_h - s.pad_h + i;
      if (y < 0 || y >= s.h) {
        for (int ox = 0; ox < ow; ++ox) out[oy * ow + ox] = 0.0f;
        continue;
      }
      for (int ox = 0; ox < ow; ++ox) {
        const int xx = ox * s.stride_w - s.pad_w + j;
        out[oy * ow + ox] = (xx >= 0 && xx < s.w) ? plane[y * s.w + xx] : 0.0f;
      }
    }
  }
}

void CpuBackend::col2im(const float* col, float* x, const Conv2dShape& s) {
  ICH_PROFILE_SCOPE("col2im");
  checks::col2im(col, x, s);
  const int oh = s.out_h(), ow = s.out_w();
  // Parallel over input channels: the rows of channel ci write only plane ci, in a fixed order.
#pragma omp parallel for schedule(static) if (s.col_rows() * oh * ow > cpu::kParallelThreshold)
  for (int ci = 0; ci < s.c; ++ci) {
    float* plane = x + int64_t(ci) * s.h * s.w;  // (h, w)
    for (int64_t p = 0; p < int64_t(s.h) * s.w; ++p) plane[p] = 0.0f;
    for (int i = 0; i < s.kh; ++i) {
      for (int j = 0; j < s.kw; ++j) {
        const int64_t r = (int64_t(ci) * s.kh + i) * s.kw + j;
        const float* in = col + r * oh * ow;  // (out_h, out_w)
        for (int oy = 0; oy < oh; ++oy) {
          const int y = oy * s.stride_h - s.pad_h + i;
          if (y < 0 || y >= s.h) continue;
          for (int ox = 0; ox < ow; ++ox) {
            const int xx = ox * s.stride_w - s.pad_w + j;
            if (xx >= 0 && xx < s.w) plane[y * s.w + xx] += in[oy * ow + ox];
          }
        }
      }
    }
  }
}

}  // namespace ich
