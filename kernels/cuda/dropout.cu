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
  checks::dropout2d_forward(x, y, mask, n, c, hw, p);
  const int64_t nc = int64_t(n) * c;
  if (nc == 0) return;
  launch_linear(dropout2d_mask_kernel, nc, launch_, mask, nc, p, 1.0f / (1.0f - p), seed, offset);
  launch_linear(scale_channels_kernel, nc * hw, launch_, x, mask, y, nc * hw, hw);
}

void CudaBackend::dropout2d_backward(const float* dy, const float* mask, float* dx, int n, int c,
                                     int64_t hw) {
  checks::dropout2d_backward(dy, mask, dx, n, c, hw);
  const int64_t total = int64_t(n) * c * hw;
  if (total == 0) return;
  launch_linear(scale_channels_kernel, total, launch_, dy, mask, dx, total, hw);
}

}  // namespace ich::ICH_CUDA_NS
