// Channel concat and split: y (n, ca + cb, hw) = [a (n, ca, hw), b (n, cb, hw)].
// Each sample's channels are contiguous, so both are two block copies per sample.
#include <cstring>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::concat_channels(const float* a, const float* b, float* y, int n, int ca, int cb,
                                 int64_t hw) {
  ICH_PROFILE_SCOPE("concat_channels");
  checks::concat_channels(a, b, y, n, ca, cb, hw);
  if (int64_t(n) * (ca + cb) * hw == 0) return;
  const int64_t a_block = int64_t(ca) * hw, b_block = int64_t(cb) * hw;
#pragma omp parallel for schedule(static) if (int64_t(n) * (ca + cb) * hw > cpu::kParallelThreshold)
  for (int img = 0; img < n; ++img) {
    float* out = y + img * (a_block + b_block);  // (ca + cb, hw)
    if (a_block > 0) std::memcpy(out, a + img * a_block, a_block * sizeof(float));
    if (b_block > 0) std::memcpy(out + a_block, b + img * b_block, b_block * sizeof(float));
  }
}

void CpuBackend::split_channels(const float* y, float* a, float* b, int n, int ca, int cb,
                                int64_t hw) {
  ICH_PROFILE_SCOPE("split_channels");
  checks::split_channels(y, n, ca, cb, hw);
  if (int64_t(n) * (ca + cb) * hw == 0) return;
  const int64_t a_block = int64_t(ca) * hw, b_block = int64_t(cb) * hw;
#pragma omp parallel for schedule(static) if (int64_t(n) * (ca + cb) * hw > cpu::kParallelThreshold)
  for (int img = 0; img < n; ++img) {
    const float* in = y + img * (a_block + b_block);  // (ca + cb, hw)
    if (a != nullptr && a_block > 0) std::memcpy(a + img * a_block, in, a_block * sizeof(float));
    if (b != nullptr && b_block > 0) {
      std::memcpy(b + img * b_block, in + a_block, b_block * sizeof(float));
    }
  }
}

}  // namespace ich
