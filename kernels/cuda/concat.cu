// Channel concat and split:
//   y (n, ca + cb, hw) = [a (n, ca, hw), b (n, cb, hw)]
// split is the inverse; either of its outputs may be null to skip it. One thread per
// element of y, so reads (concat) or writes (split) of y are coalesced.
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

__global__ void concat_channels_kernel(const float* a, const float* b, float* y, int64_t total,
                                       int ca, int cb, int64_t hw) {
  const int64_t per_image = int64_t(ca + cb) * hw;
  ICH_GRID_STRIDE_LOOP(i, total) {
    const int64_t img = i / per_image;
    const int64_t rest = i - img * per_image;  // ch * hw + pixel
    const int64_t ch = rest / hw;
    const int64_t pixel = rest - ch * hw;
    y[i] = ch < ca ? a[(img * ca + ch) * hw + pixel] : b[(img * cb + (ch - ca)) * hw + pixel];
  }
}

__global__ void split_channels_kernel(const float* y, float* a, float* b, int64_t total, int ca,
                                      int cb, int64_t hw) {
  const int64_t per_image = int64_t(ca + cb) * hw;
  ICH_GRID_STRIDE_LOOP(i, total) {
    const int64_t img = i / per_image;
    const int64_t rest = i - img * per_image;
    const int64_t ch = rest / hw;
    const int64_t pixel = rest - ch * hw;
    if (ch < ca) {
      if (a != nullptr) a[(img * ca + ch) * hw + pixel] = y[i];
    } else if (b != nullptr) {
      b[(img * cb + (ch - ca)) * hw + pixel] = y[i];
    }
  }
}

// ---- CudaBackend members

void CudaBackend::concat_channels(const float* a, const float* b, float* y, int n, int ca, int cb,
                                  int64_t hw) {
  checks::concat_channels(a, b, y, n, ca, cb, hw);
  const int64_t total = int64_t(n) * (ca + cb) * hw;
  if (total == 0) return;
  launch_linear(concat_channels_kernel, total, launch_, a, b, y, total, ca, cb, hw);
}

void CudaBackend::split_channels(const float* y, float* a, float* b, int n, int ca, int cb,
                                 int64_t hw) {
  checks::split_channels(y, n, ca, cb, hw);
  const int64_t total = int64_t(n) * (ca + cb) * hw;
  if (total == 0 || (a == nullptr && b == nullptr)) return;
  launch_linear(split_channels_kernel, total, launch_, y, a, b, total, ca, cb, hw);
}

}  // namespace ich::ICH_CUDA_NS
