// Dropout2d: zeroes whole channels.
//   mask (n, c): 0 or 1/(1-p), u = philox_uniform(seed, offset + img*C + ch), keep when u >= p
//   y (n, c, hw) = x * mask[img, ch];  dx = dy * mask[img, ch]
// The mask uses the Philox contract of core/philox.h, so it is identical to the CPU's.
// Two launches: the mask (one draw per channel, not per element), then the scaling.
#include "core/philox.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

__global__ void dropout2d_mask_kernel(float* mask, int64_t nc, float p, float keep_scale,
                                      uint64_t seed, uint64_t offset) {
  ICH_GRID_STRIDE_LOOP(i, nc) {
    mask[i] = philox_uniform(seed, offset + uint64_t(i)) >= p ? keep_scale : 0.0f;
  }
}

// y (nc, hw) = x (nc, hw) * mask (nc); also the backward, with dy for x and dx for y.
__global__ void scale_channels_kernel(const float* x, const float* mask, float* y, int64_t total,
                                      int64_t hw) {
  ICH_GRID_STRIDE_LOOP(i, total) {
    y[i] = x[i] * mask[i / hw];
  }
}

// ---- CudaBackend members

void CudaBackend::dropout2d_forward(const float* x, float* y, float* mask, int n, int c, int64_t hw,
                                    float p, uint64_t seed, uint64_t offset) {
  ICH_CHECK(n >= 0 && c >= 0 && hw >= 0,
            "dropout2d_forward: sizes must be >= 0, got n=" << n << " c=" << c << " hw=" << hw);
  ICH_CHECK(p >= 0.0f && p < 1.0f, "dropout2d_forward: p must be in [0, 1), got " << p);
  const int64_t nc = int64_t(n) * c;
  if (nc == 0) return;
  ICH_CHECK(mask != nullptr && (hw == 0 || (x != nullptr && y != nullptr)),
            "dropout2d_forward: x, y and mask must not be null");
  launch_linear(dropout2d_mask_kernel, nc, launch_, mask, nc, p, 1.0f / (1.0f - p), seed, offset);
  launch_linear(scale_channels_kernel, nc * hw, launch_, x, mask, y, nc * hw, hw);
}

void CudaBackend::dropout2d_backward(const float* dy, const float* mask, float* dx, int n, int c,
                                     int64_t hw) {
  ICH_CHECK(n >= 0 && c >= 0 && hw >= 0,
            "dropout2d_backward: sizes must be >= 0, got n=" << n << " c=" << c << " hw=" << hw);
  const int64_t total = int64_t(n) * c * hw;
  if (total == 0) return;
  ICH_CHECK(dy != nullptr && mask != nullptr && dx != nullptr,
            "dropout2d_backward: dy, mask and dx must not be null");
  launch_linear(scale_channels_kernel, total, launch_, dy, mask, dx, total, hw);
}

}  // namespace ich::ICH_CUDA_NS
