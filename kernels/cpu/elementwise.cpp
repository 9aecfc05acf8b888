// Elementwise add, mul, scale, axpy over n values (outputs may alias inputs), and the global
// sum. The sum cuts x into chunks whose boundaries depend only on n (cpu::sum_chunk_size),
// sums each chunk in double and adds the partials in chunk order: the same bits for any
// number of threads.
#include "core/ceil_div.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::add(const float* a, const float* b, float* y, int64_t n) {
  ICH_PROFILE_SCOPE("add");
  checks::elementwise("add", n, {a, b, y});
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void CpuBackend::mul(const float* a, const float* b, float* y, int64_t n) {
  ICH_PROFILE_SCOPE("mul");
  checks::elementwise("mul", n, {a, b, y});
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void CpuBackend::scale(const float* x, float* y, int64_t n, float alpha) {
  ICH_PROFILE_SCOPE("scale");
  checks::elementwise("scale", n, {x, y});
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}

void CpuBackend::axpy(float alpha, const float* x, float* y, int64_t n) {
  ICH_PROFILE_SCOPE("axpy");
  checks::elementwise("axpy", n, {x, y});
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void CpuBackend::sum(const float* x, int64_t n, float* out) {
  ICH_PROFILE_SCOPE("sum");
  checks::sum(x, n, out);
  const int64_t chunk = cpu::sum_chunk_size(n);
  const int chunks = static_cast<int>(ceil_div(n, chunk));  // <= cpu::kMaxSumChunks
  double partial[cpu::kMaxSumChunks];
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int ci = 0; ci < chunks; ++ci) {
    const int64_t begin = int64_t(ci) * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    partial[ci] = cpu::sum_double(x + begin, end - begin);
  }
  double total = 0.0;
  for (int ci = 0; ci < chunks; ++ci) total += partial[ci];
  out[0] = static_cast<float>(total);
}

}  // namespace ich
