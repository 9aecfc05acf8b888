// Dropout2d: zeroes whole channels. mask (n, c) = 0 or 1 / (1 - p), drawn by the Philox
// contract: u = philox_uniform(seed, offset + img * C + ch), keep when u >= p.
//   x, y, dy, dx (n, c, hw)
#include "core/philox.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::dropout2d_forward(const float* x, float* y, float* mask, int n, int c, int64_t hw,
                                   float p, uint64_t seed, uint64_t offset) {
  ICH_CHECK(n >= 0 && c >= 0 && hw >= 0,
            "dropout2d_forward: sizes must be >= 0, got n=" << n << " c=" << c << " hw=" << hw);
  ICH_CHECK(p >= 0.0f && p < 1.0f, "dropout2d_forward: p must be in [0, 1), got " << p);
  if (int64_t(n) * c == 0) return;
  ICH_CHECK(mask != nullptr && (hw == 0 || (x != nullptr && y != nullptr)),
            "dropout2d_forward: x, y and mask must not be null");
  const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    const float u = philox_uniform(seed, offset + static_cast<uint64_t>(nc));
    const float m = u >= p ? keep_scale : 0.0f;
    mask[nc] = m;
    const float* in = x + nc * hw;  // (hw)
    float* out = y + nc * hw;       // (hw)
    for (int64_t i = 0; i < hw; ++i) out[i] = in[i] * m;
  }
}

void CpuBackend::dropout2d_backward(const float* dy, const float* mask, float* dx, int n, int c,
                                    int64_t hw) {
  ICH_CHECK(n >= 0 && c >= 0 && hw >= 0,
            "dropout2d_backward: sizes must be >= 0, got n=" << n << " c=" << c << " hw=" << hw);
  if (int64_t(n) * c * hw == 0) return;
  ICH_CHECK(dy != nullptr && mask != nullptr && dx != nullptr,
            "dropout2d_backward: dy, mask and dx must not be null");
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    const float m = mask[nc];
    const float* in = dy + nc * hw;  // (hw)
    float* out = dx + nc * hw;       // (hw)
    for (int64_t i = 0; i < hw; ++i) out[i] = in[i] * m;
  }
}

}  // namespace ich
