// Per-channel bias: y (n, c, hw) += bias (c); db (c) = sum over n and hw of dy.
#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::bias_add(float* y, const float* bias, int n, int c, int64_t hw) {
  ICH_PROFILE_SCOPE("bias_add");
  checks::bias_add(y, bias, n, c, hw);
  if (int64_t(n) * c * hw == 0) return;
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    const float b = bias[nc % c];
    float* plane = y + nc * hw;  // (hw)
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) plane[i] += b;
  }
}

void CpuBackend::bias_grad(const float* dy, float* db, int n, int c, int64_t hw) {
  ICH_PROFILE_SCOPE("bias_grad");
  checks::bias_grad(dy, db, n, c, hw);
  // One channel per iteration, summed serially in double: independent of the thread count.
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int ch = 0; ch < c; ++ch) {
    double total = 0.0;
    for (int img = 0; img < n; ++img) {
      total += cpu::sum_double(dy + (int64_t(img) * c + ch) * hw, hw);
    }
    db[ch] = static_cast<float>(total);
  }
}

}  // namespace ich
