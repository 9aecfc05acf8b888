// Max pooling as PyTorch's max_pool2d_with_indices (floor mode, no dilation), the same
// rules as kernels/cpu/pool2d.cpp:
//   x (n, c, h, w) -> y, argmax (n, c, out_h, out_w); argmax = y_in * w + x_in in its plane.
// The window of output (oy, ox) starts at (oy*stride - pad, ox*stride - pad) and is clipped
// to the image. Scanning it row-major, an element replaces the running maximum when it is
// greater or NaN: ties keep the first maximum, a NaN propagates.
// Forward: one thread per output. Backward: a gather, one thread per input pixel, which
// visits the output windows that contain the pixel in row-major order and sums the dy of
// those whose argmax is the pixel: the CPU's scatter order, with no atomics. An argmax that
// lies outside its own window (never written by the forward) routes nothing.
#include <cmath>

#include "core/ceil_div.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

struct PoolGeometry {
  int h, w;
  int kh, kw;
  int stride_h, stride_w;
  int pad_h, pad_w;
  int out_h, out_w;
};

PoolGeometry geometry_of(const Pool2dShape& s) {
  return PoolGeometry{s.h,        s.w,     s.kh,    s.kw,      s.stride_h,
                      s.stride_w, s.pad_h, s.pad_w, s.out_h(), s.out_w()};
}

// ---- kernels

__device__ __forceinline__ int min_int(int a, int b) {
  return a < b ? a : b;
}
__device__ __forceinline__ int max_int(int a, int b) {
  return a > b ? a : b;
}
// NaN is the one value unequal to itself (the build never uses fast-math).
__device__ __forceinline__ bool is_nan(float v) {
  return v != v;
}

__global__ void max_pool2d_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                          int32_t* __restrict__ argmax, PoolGeometry g,
                                          int64_t total) {
  ICH_GRID_STRIDE_LOOP(o, total) {
    const int ox = static_cast<int>(o % g.out_w);
    const int oy = static_cast<int>((o / g.out_w) % g.out_h);
    const int64_t plane = o / (int64_t(g.out_w) * g.out_h);
    const float* in = x + plane * g.h * g.w;  // (h, w)
    const int y_begin = max_int(oy * g.stride_h - g.pad_h, 0);
    const int y_end = min_int(oy * g.stride_h - g.pad_h + g.kh, g.h);
    const int x_begin = max_int(ox * g.stride_w - g.pad_w, 0);
    const int x_end = min_int(ox * g.stride_w - g.pad_w + g.kw, g.w);
    float best = -INFINITY;
    int32_t best_index = y_begin * g.w + x_begin;
    for (int yy = y_begin; yy < y_end; ++yy) {
      for (int xx = x_begin; xx < x_end; ++xx) {
        const float v = in[yy * g.w + xx];
        if (v > best || is_nan(v)) {
          best = v;
          best_index = yy * g.w + xx;
        }
      }
    }
    y[o] = best;
    argmax[o] = best_index;
  }
}

__global__ void max_pool2d_backward_kernel(const float* __restrict__ dy,
                                           const int32_t* __restrict__ argmax,
                                           float* __restrict__ dx, PoolGeometry g, int64_t total) {
  ICH_GRID_STRIDE_LOOP(p, total) {
    const int xx = static_cast<int>(p % g.w);
    const int yy = static_cast<int>((p / g.w) % g.h);
    const int64_t plane = p / (int64_t(g.w) * g.h);
    const int64_t out_plane = plane * g.out_h * g.out_w;
    const int32_t self = yy * g.w + xx;
    // Windows oy with oy*stride - pad <= yy < oy*stride - pad + kh.
    const int y_low = yy + g.pad_h - g.kh + 1;
    const int oy_begin = y_low <= 0 ? 0 : ceil_div(y_low, g.stride_h);
    const int oy_end = min_int((yy + g.pad_h) / g.stride_h + 1, g.out_h);
    const int x_low = xx + g.pad_w - g.kw + 1;
    const int ox_begin = x_low <= 0 ? 0 : ceil_div(x_low, g.stride_w);
    const int ox_end = min_int((xx + g.pad_w) / g.stride_w + 1, g.out_w);
    float sum = 0.0f;
    for (int oy = oy_begin; oy < oy_end; ++oy) {
      for (int ox = ox_begin; ox < ox_end; ++ox) {
        const int64_t o = out_plane + int64_t(oy) * g.out_w + ox;
        if (argmax[o] == self) sum += dy[o];
      }
    }
    dx[p] = sum;
  }
}

// ---- launchers

void max_pool2d_forward(const LaunchContext& ctx, const float* x, float* y, int32_t* argmax,
                        const Pool2dShape& s) {
  const int64_t total = int64_t(s.n) * s.c * s.out_h() * s.out_w();
  launch_linear(max_pool2d_forward_kernel, total, ctx, x, y, argmax, geometry_of(s), total);
}

void max_pool2d_backward(const LaunchContext& ctx, const float* dy, const int32_t* argmax,
                         float* dx, const Pool2dShape& s) {
  const int64_t total = int64_t(s.n) * s.c * s.h * s.w;
  launch_linear(max_pool2d_backward_kernel, total, ctx, dy, argmax, dx, geometry_of(s), total);
}

}  // namespace

// ---- CudaBackend members

void CudaBackend::max_pool2d_forward(const float* x, float* y, int32_t* argmax,
                                     const Pool2dShape& s) {
  checks::max_pool2d_forward(x, y, argmax, s);
  ICH_CUDA_NS::max_pool2d_forward(launch_context(), x, y, argmax, s);
}

void CudaBackend::max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx,
                                      const Pool2dShape& s) {
  checks::max_pool2d_backward(dy, argmax, dx, s);
  ICH_CUDA_NS::max_pool2d_backward(launch_context(), dy, argmax, dx, s);
}

}  // namespace ich::ICH_CUDA_NS
