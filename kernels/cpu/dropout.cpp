// Dropout2d: zeroes whole channels. mask (n, c) = 0 or 1 / (1 - p), drawn by the Philox
// contract: u = philox_uniform(seed, offset + img * C + ch), keep when u >= p.
//   x, y, dy, dx (n, c, hw)
#include "core/philox.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::dropout2d_forward(const float* x, float* y, float* mask, int n, int c, int64_t hw,
                                   float p, uint64_t seed, uint64_t offset) {
  ICH_PROFILE_SCOPE("dropout2d_forward");
  checks::dropout2d_forward(x, y, mask, n, c, hw, p);
  if (int64_t(n) * c == 0) return;
  const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    const float u = philox_uniform(seed, offset + static_cast<uint64_t>(nc));
    const float m = u >= p ? keep_scale : 0.0f;
    mask[nc] = m;
    const float* in = x + nc * hw;  // (hw)
    float* out = y + nc * hw;       // (hw)
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) out[i] = in[i] * m;
  }
}

void CpuBackend::dropout2d_backward(const float* dy, const float* mask, float* dx, int n, int c,
                                    int64_t hw) {
  ICH_PROFILE_SCOPE("dropout2d_backward");
  checks::dropout2d_backward(dy, mask, dx, n, c, hw);
  if (int64_t(n) * c * hw == 0) return;
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    const float m = mask[nc];
    const float* in = dy + nc * hw;  // (hw)
    float* out = dx + nc * hw;       // (hw)
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) out[i] = in[i] * m;
  }
}

}  // namespace ich
