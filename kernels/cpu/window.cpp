// CT windowing: Hounsfield units -> [0, 1] with window level wl and width ww,
// out = clamp((hu - (wl - ww/2)) / ww, 0, 1).
#include <algorithm>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

template <typename T>
void window_loop(const T* hu, float* out, int64_t n, float wl, float ww, const char* op) {
  checks::ct_window(op, hu, out, n, ww);
  if (n == 0) return;
  const float lower = wl - 0.5f * ww;
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const float v = (static_cast<float>(hu[i]) - lower) / ww;
    out[i] = std::min(std::max(v, 0.0f), 1.0f);
  }
}

}  // namespace

void CpuBackend::ct_window(const float* hu, float* out, int64_t n, float wl, float ww) {
  ICH_PROFILE_SCOPE("ct_window");
  window_loop(hu, out, n, wl, ww, "ct_window");
}

void CpuBackend::ct_window_i16(const int16_t* hu, float* out, int64_t n, float wl, float ww) {
  ICH_PROFILE_SCOPE("ct_window_i16");
  window_loop(hu, out, n, wl, ww, "ct_window_i16");
}

}  // namespace ich
