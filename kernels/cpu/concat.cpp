// Channel concat and split: y (n, ca + cb, hw) = [a (n, ca, hw), b (n, cb, hw)].
// Each sample's channels are contiguous, so both are two block copies per sample.
#include <cstring>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

void check_concat(int n, int ca, int cb, int64_t hw, const char* op) {
  ICH_CHECK(n >= 0 && ca >= 0 && cb >= 0 && hw >= 0, op << ": sizes must be >= 0, got n=" << n
                                                        << " ca=" << ca << " cb=" << cb
                                                        << " hw=" << hw);
}

}  // namespace

void CpuBackend::concat_channels(const float* a, const float* b, float* y, int n, int ca, int cb,
                                 int64_t hw) {
  check_concat(n, ca, cb, hw, "concat_channels");
  if (int64_t(n) * (ca + cb) * hw == 0) return;
  ICH_CHECK(y != nullptr && (ca == 0 || a != nullptr) && (cb == 0 || b != nullptr),
            "concat_channels: y and the non-empty inputs must not be null");
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
  check_concat(n, ca, cb, hw, "split_channels");
  if (int64_t(n) * (ca + cb) * hw == 0) return;
  ICH_CHECK(y != nullptr, "split_channels: y must not be null");
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
