// im2col / col2im of one image, no dilation (caffe's layout, as kernels/cpu/im2col.cpp).
//   x   (c, h, w)
//   col (c*kh*kw, out_h*out_w): row r = (ci*kh + i)*kw + j, column q = oy*out_w + ox holds
//       x[ci, oy*stride_h - pad_h + i, ox*stride_w - pad_w + j], zero outside the image.
// im2col: one thread per column entry; consecutive threads write consecutive columns.
// col2im: a gather, one thread per pixel, summing the entries that map to it in (i, j)
// order. No atomics, so the result is deterministic and race-free, and the order of the
// sum is the CPU reference's, entry for entry.
#include "kernels/cuda/conv_kernels.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

// ---- kernels

// Geometry shared by both kernels; plain ints, so it is copied to the device by value.
struct ColGeometry {
  int c, h, w;
  int kh, kw;
  int pad_h, pad_w;
  int stride_h, stride_w;
  int out_h, out_w;
};

ColGeometry geometry_of(const Conv2dShape& s) {
  return ColGeometry{s.c,     s.h,        s.w,        s.kh,      s.kw,     s.pad_h,
                     s.pad_w, s.stride_h, s.stride_w, s.out_h(), s.out_w()};
}

// col (c*kh*kw, out_h*out_w) from x (c, h, w).
__global__ void im2col_kernel(const float* __restrict__ x, float* __restrict__ col, ColGeometry g) {
  const int64_t columns = int64_t(g.out_h) * g.out_w;
  const int64_t total = int64_t(g.c) * g.kh * g.kw * columns;
  ICH_GRID_STRIDE_LOOP(e, total) {
    const int64_t r = e / columns;
    const int q = static_cast<int>(e - r * columns);
    const int ox = q % g.out_w, oy = q / g.out_w;
    const int j = static_cast<int>(r % g.kw);
    const int i = static_cast<int>((r / g.kw) % g.kh);
    const int64_t ci = r / (int64_t(g.kw) * g.kh);
    const int y = oy * g.stride_h - g.pad_h + i;
    const int xx = ox * g.stride_w - g.pad_w + j;
    const bool inside = y >= 0 && y < g.h && xx >= 0 && xx < g.w;
    col[e] = inside ? x[(ci * g.h + y) * g.w + xx] : 0.0f;
  }
}

// x (c, h, w) = sum of the col entries that im2col would have read from each pixel.
__global__ void col2im_kernel(const float* __restrict__ col, float* __restrict__ x, ColGeometry g) {
  const int64_t columns = int64_t(g.out_h) * g.out_w;
  const int64_t total = int64_t(g.c) * g.h * g.w;
  ICH_GRID_STRIDE_LOOP(p, total) {
    const int xx = static_cast<int>(p % g.w);
    const int y = static_cast<int>((p / g.w) % g.h);
    const int64_t ci = p / (int64_t(g.w) * g.h);
    float sum = 0.0f;
    for (int i = 0; i < g.kh; ++i) {
      // Kernel row i reads pixel row y from output row oy = (y + pad_h - i) / stride_h when
      // that division is exact and oy is inside the output.
      const int ty = y + g.pad_h - i;
      if (ty < 0 || ty % g.stride_h != 0) continue;
      const int oy = ty / g.stride_h;
      if (oy >= g.out_h) continue;
      for (int j = 0; j < g.kw; ++j) {
        const int tx = xx + g.pad_w - j;
        if (tx < 0 || tx % g.stride_w != 0) continue;
        const int ox = tx / g.stride_w;
        if (ox >= g.out_w) continue;
        const int64_t r = (ci * g.kh + i) * g.kw + j;
        sum += col[r * columns + int64_t(oy) * g.out_w + ox];
      }
    }
    x[p] = sum;
  }
}

}  // namespace

// ---- launchers

void im2col(const LaunchContext& ctx, const float* x, float* col, const Conv2dShape& s) {
  launch_linear(im2col_kernel, s.col_rows() * s.col_cols(), ctx, x, col, geometry_of(s));
}

void col2im(const LaunchContext& ctx, const float* col, float* x, const Conv2dShape& s) {
  launch_linear(col2im_kernel, int64_t(s.c) * s.h * s.w, ctx, col, x, geometry_of(s));
}

// ---- CudaBackend members

void CudaBackend::im2col(const float* x, float* col, const Conv2dShape& s) {
  checks::im2col(x, col, s);
  ICH_CUDA_NS::im2col(launch_context(), x, col, s);
}

void CudaBackend::col2im(const float* col, float* x, const Conv2dShape& s) {
  checks::col2im(col, x, s);
  ICH_CUDA_NS::col2im(launch_context(), col, x, s);
}

}  // namespace ich::ICH_CUDA_NS
