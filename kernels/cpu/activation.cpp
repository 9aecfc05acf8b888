// ReLU and sigmoid, elementwise over n values. relu keeps NaN (x < 0 is false for NaN),
// as PyTorch's clamp_min.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

void check_elementwise(int64_t n, bool pointers_ok, const char* op) {
  ICH_CHECK(n >= 0, op << ": n must be >= 0, got " << n);
  ICH_CHECK(n == 0 || pointers_ok, op << ": null input or output for n=" << n);
}

}  // namespace

void CpuBackend::relu_forward(const float* x, float* y, int64_t n) {
  check_elementwise(n, x && y, "relu_forward");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void CpuBackend::relu_backward(const float* dy, const float* x, float* dx, int64_t n) {
  check_elementwise(n, dy && x && dx, "relu_backward");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

void CpuBackend::sigmoid_forward(const float* x, float* y, int64_t n) {
  check_elementwise(n, x && y, "sigmoid_forward");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold / 8)
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void CpuBackend::sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) {
  check_elementwise(n, dy && y && dx, "sigmoid_backward");
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

}  // namespace ich
