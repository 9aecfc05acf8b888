// ReLU and sigmoid, elementwise over n values. relu keeps NaN (x < 0 is false for NaN),
// as PyTorch's clamp_min.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::relu_forward(const float* x, float* y, int64_t n) {
  ICH_PROFILE_SCOPE("relu_forward");
  checks::elementwise("relu_forward", n, {x, y});
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void CpuBackend::relu_backward(const float* dy, const float* x, float* dx, int64_t n) {
  ICH_PROFILE_SCOPE("relu_backward");
  checks::elementwise("relu_backward", n, {dy, x, dx});
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

void CpuBackend::sigmoid_forward(const float* x, float* y, int64_t n) {
  ICH_PROFILE_SCOPE("sigmoid_forward");
  checks::elementwise("sigmoid_forward", n, {x, y});
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold / 8)
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void CpuBackend::sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) {
  ICH_PROFILE_SCOPE("sigmoid_backward");
  checks::elementwise("sigmoid_backward", n, {dy, y, dx});
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

}  // namespace ich
