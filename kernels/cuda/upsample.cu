// Bilinear upsampling as PyTorch's upsample_bilinear2d with scale = in/out, the same float
// arithmetic as kernels/cpu/upsample.cpp: each output row (and likewise column) reads the two
// rows of its tap, kernels/bilinear_tap.h.
//   x (n, c, h, w) -> y (n, c, oh, ow)
// Forward: one thread per output. Backward: a gather, one thread per input pixel. i0 never
// decreases as dst grows, so the outputs that read row iy (through i0 == iy or i1 == iy) are
// the contiguous range with i0 in {iy - 1, iy}, found by binary search on the same tap
// function the forward uses; columns likewise. The pixel then adds its terms in the CPU
// scatter's order (outputs row-major, within an output the taps (i0,i0), (i0,i1), (i1,i0),
// (i1,i1)), so there are no atomics and no race.
#include "kernels/bilinear_tap.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

// ---- kernels

// The first dst in [0, out_size) whose i0 is >= target (out_size when none).
__device__ __forceinline__ int first_dst_reading_at_least(int target, int in_size, int out_size,
                                                          bool align_corners) {
  int lo = 0, hi = out_size;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (linear_tap(mid, in_size, out_size, align_corners).i0 >= target)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

__global__ void upsample_bilinear2d_forward_kernel(const float* __restrict__ x,
                                                   float* __restrict__ y, int h, int w, int oh,
                                                   int ow, bool align_corners, int64_t total) {
  ICH_GRID_STRIDE_LOOP(o, total) {
    const int ox = static_cast<int>(o % ow);
    const int oy = static_cast<int>((o / ow) % oh);
    const int64_t plane = o / (int64_t(ow) * oh);
    const float* in = x + plane * h * w;  // (h, w)
    const LinearTap r = linear_tap(oy, h, oh, align_corners);
    const LinearTap q = linear_tap(ox, w, ow, align_corners);
    y[o] = r.lambda0 * (q.lambda0 * in[r.i0 * w + q.i0] + q.lambda1 * in[r.i0 * w + q.i1]) +
           r.lambda1 * (q.lambda0 * in[r.i1 * w + q.i0] + q.lambda1 * in[r.i1 * w + q.i1]);
  }
}

__global__ void upsample_bilinear2d_backward_kernel(const float* __restrict__ dy,
                                                    float* __restrict__ dx, int h, int w, int oh,
                                                    int ow, bool align_corners, int64_t total) {
  ICH_GRID_STRIDE_LOOP(p, total) {
    const int ix = static_cast<int>(p % w);
    const int iy = static_cast<int>((p / w) % h);
    const int64_t plane = p / (int64_t(w) * h);
    const float* out = dy + plane * oh * ow;  // (oh, ow)
    const int oy_begin = first_dst_reading_at_least(iy - 1, h, oh, align_corners);
    const int oy_end = first_dst_reading_at_least(iy + 1, h, oh, align_corners);
    const int ox_begin = first_dst_reading_at_least(ix - 1, w, ow, align_corners);
    const int ox_end = first_dst_reading_at_least(ix + 1, w, ow, align_corners);
    float sum = 0.0f;
    for (int oy = oy_begin; oy < oy_end; ++oy) {
      const LinearTap r = linear_tap(oy, h, oh, align_corners);
      for (int ox = ox_begin; ox < ox_end; ++ox) {
        const LinearTap q = linear_tap(ox, w, ow, align_corners);
        const float g = out[int64_t(oy) * ow + ox];
        if (r.i0 == iy && q.i0 == ix) sum += r.lambda0 * q.lambda0 * g;
        if (r.i0 == iy && q.i1 == ix) sum += r.lambda0 * q.lambda1 * g;
        if (r.i1 == iy && q.i0 == ix) sum += r.lambda1 * q.lambda0 * g;
        if (r.i1 == iy && q.i1 == ix) sum += r.lambda1 * q.lambda1 * g;
      }
    }
    dx[p] = sum;
  }
}

// ---- launchers

void upsample_bilinear2d_forward(const LaunchContext& ctx, const float* x, float* y, int n, int c,
                                 int h, int w, int oh, int ow, bool align_corners) {
  const int64_t total = int64_t(n) * c * oh * ow;
  launch_linear(upsample_bilinear2d_forward_kernel, total, ctx, x, y, h, w, oh, ow, align_corners,
                total);
}

void upsample_bilinear2d_backward(const LaunchContext& ctx, const float* dy, float* dx, int n,
                                  int c, int h, int w, int oh, int ow, bool align_corners) {
  const int64_t total = int64_t(n) * c * h * w;
  launch_linear(upsample_bilinear2d_backward_kernel, total, ctx, dy, dx, h, w, oh, ow,
                align_corners, total);
}

}  // namespace

// ---- CudaBackend members

void CudaBackend::upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w,
                                              int oh, int ow, bool align_corners) {
  checks::upsample_bilinear2d_forward(x, y, n, c, h, w, oh, ow);
  ICH_CUDA_NS::upsample_bilinear2d_forward(launch_context(), x, y, n, c, h, w, oh, ow,
                                           align_corners);
}

void CudaBackend::upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h,
                                               int w, int oh, int ow, bool align_corners) {
  checks::upsample_bilinear2d_backward(dy, dx, n, c, h, w, oh, ow);
  ICH_CUDA_NS::upsample_bilinear2d_backward(launch_context(), dy, dx, n, c, h, w, oh, ow,
                                            align_corners);
}

}  // namespace ich::ICH_CUDA_NS
