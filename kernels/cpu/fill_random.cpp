// fill, uniform and normal. The random draws follow the Philox contract of core/philox.h
// (element i uses counter offset + i), so every backend produces the same numbers.
#include <omp.h>

#include "core/philox.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::fill(float* x, int64_t n, float value) {
  ICH_PROFILE_SCOPE("fill");
  checks::fill(x, n);
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) x[i] = value;
}

void CpuBackend::uniform(float* x, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  ICH_PROFILE_SCOPE("uniform");
  checks::uniform(x, n, lo, hi);
  const float range = hi - lo;
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold / 8)
  for (int64_t i = 0; i < n; ++i) {
    x[i] = lo + range * philox_uniform(seed, offset + static_cast<uint64_t>(i));
  }
}

void CpuBackend::normal(float* x, int64_t n, uint64_t seed, uint64_t offset, float mean,
                        float std) {
  ICH_PROFILE_SCOPE("normal");
  checks::normal(x, n, std);
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold / 8)
  for (int64_t i = 0; i < n; ++i) {
    x[i] = mean + std * philox_normal(seed, offset + static_cast<uint64_t>(i));
  }
}

}  // namespace ich
