// CT windowing: Hounsfield units (float or int16) -> [0, 1],
//   out = clamp((hu - (wl - ww/2)) / ww, 0, 1)
// over n contiguous values. Division (not a multiply by 1/ww) keeps it bit-identical to
// the CPU reference.
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

template <typename T>
__global__ void ct_window_kernel(const T* hu, float* out, int64_t n, float lower, float ww) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    const float v = (static_cast<float>(hu[i]) - lower) / ww;
    out[i] = fminf(fmaxf(v, 0.0f), 1.0f);
  }
}

// ---- launchers

template <typename T>
void ct_window_launch(const LaunchContext& ctx, const T* hu, float* out, int64_t n, float wl,
                      float ww, const char* op) {
  checks::ct_window(op, hu, out, n, ww);
  launch_linear(ct_window_kernel<T>, n, ctx, hu, out, n, wl - 0.5f * ww, ww);
}

// ---- CudaBackend members

void CudaBackend::ct_window(const float* hu, float* out, int64_t n, float wl, float ww) {
  ct_window_launch(launch_, hu, out, n, wl, ww, "ct_window");
}

void CudaBackend::ct_window_i16(const int16_t* hu, float* out, int64_t n, float wl, float ww) {
  ct_window_launch(launch_, hu, out, n, wl, ww, "ct_window_i16");
}

}  // namespace ich::ICH_CUDA_NS
