// Elementwise add, mul, scale, axpy over n values (outputs may alias inputs), and the global
// sum. The sum cuts x into chunks whose boundaries depend only on n (cpu::sum_chunk_size),
// sums each chunk in double and adds the partials in chunk order: the same bits for any
// number of threads.
#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

void check_elementwise(int64_t n, bool pointers_ok, const char* op) {
  ICH_CHECK(n >= 0, op << ": n must be >= 0, got " << n);
  ICH_CHECK(n == 0 || pointers_ok, op << ": null input or output for n=" << n);
}

}  // namespace

void CpuBackend::add(const float* a, const float* b, float* y, int64_t n) {
  check_elementwise(n, a && b && y, "add");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void CpuBackend::mul(const float* a, const float* b, float* y, int64_t n) {
  check_elementwise(n, a && b && y, "mul");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void CpuBackend::scale(const float* x, float* y, int64_t n, float alpha) {
  check_elementwise(n, x && y, "scale");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}

void CpuBackend::axpy(float alpha, const float* x, float* y, int64_t n) {
  check_elementwise(n, x && y, "axpy");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void CpuBackend::sum(const float* x, int64_t n, float* out) {
  check_elementwise(n, x != nullptr, "sum");
  ICH_CHECK(out != nullptr, "sum: out must not be null");
  const int64_t chunk = cpu::sum_chunk_size(n);
  const int chunks = static_cast<int>((n + chunk - 1) / chunk);  // <= cpu::kMaxSumChunks
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
