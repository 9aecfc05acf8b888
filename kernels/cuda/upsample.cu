// Bilinear upsampling as PyTorch's upsample_bilinear2d with scale = in/out, the same float
// arithmetic as kernels/cpu/upsample.cpp. For each output row (and likewise column):
//   align_corners true:  src = dst * (in - 1) / (out - 1)      (0 when out == 1)
//   align_corners false: src = max((dst + 0.5) * in / out - 0.5, 0)
//   i0 = min(floor(src), in - 1), i1 = i0 + (i0 < in - 1),
//   lambda1 = clamp(src - i0, 0, 1), lambda0 = 1 - lambda1.
//   x (n, c, h, w) -> y (n, c, oh, ow)
// Forward: one thread per output. Backward: a gather, one thread per input pixel. i0 never
// decreases as dst grows, so the outputs that read row iy (through i0 == iy or i1 == iy) are
// the contiguous range with i0 in {iy - 1, iy}, found by binary search on the same tap
// function the forward uses; columns likewise. The pixel then adds its terms in the CPU
// scatter's order (outputs row-major, within an output the taps (i0,i0), (i0,i1), (i1,i0),
// (i1,i1)), so there are no atomics and no race.
#include "kernels/cuda/conv_kernels.h"

namespace ich::ICH_CUDA_NS {

namespace {

// ---- kernels

struct LinearTap {
  int i0;
  int i1;
  float lambda0;
  float lambda1;
};

// PyTorch's area_pixel_compute_scale + area_pixel_compute_source_index + guard_index_and_lambda.
__device__ __forceinline__ LinearTap linear_tap(int dst, int in_size, int out_size,
                                                bool align_corners) {
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
  LinearTap tap;
  const int floor_src = static_cast<int>(src);
  tap.i0 = floor_src < in_size - 1 ? floor_src : in_size - 1;
  tap.i1 = tap.i0 + (tap.i0 < in_size - 1 ? 1 : 0);
  const float frac = src - static_cast<float>(tap.i0);
  tap.lambda1 = frac < 0.0f ? 0.0f : (frac > 1.0f ? 1.0f : frac);
  tap.lambda0 = 1.0f - tap.lambda1;
  return tap;
}

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

}  // namespace

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

}  // namespace ich::ICH_CUDA_NS
