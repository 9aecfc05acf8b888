// ReLU and sigmoid, elementwise over n contiguous floats.
//   relu:    y = x > 0 ? x : 0 (NaN passes through, as the CPU's)   dx = x > 0 ? dy : 0
//   sigmoid: y = 1 / (1 + exp(-x))                                  dx = dy * y * (1 - y)
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

__global__ void relu_forward_kernel(const float* x, float* y, int64_t n) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
}

__global__ void relu_backward_kernel(const float* dy, const float* x, float* dx, int64_t n) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
  }
}

__global__ void sigmoid_forward_kernel(const float* x, float* y, int64_t n) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    y[i] = 1.0f / (1.0f + expf(-x[i]));
  }
}

__global__ void sigmoid_backward_kernel(const float* dy, const float* y, float* dx, int64_t n) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    const float s = y[i];
    dx[i] = dy[i] * s * (1.0f - s);
  }
}

// ---- CudaBackend members

void CudaBackend::relu_forward(const float* x, float* y, int64_t n) {
  checks::elementwise("relu_forward", n, {x, y});
  launch_linear(relu_forward_kernel, n, launch_, x, y, n);
}

void CudaBackend::relu_backward(const float* dy, const float* x, float* dx, int64_t n) {
  checks::elementwise("relu_backward", n, {dy, x, dx});
  launch_linear(relu_backward_kernel, n, launch_, dy, x, dx, n);
}

void CudaBackend::sigmoid_forward(const float* x, float* y, int64_t n) {
  checks::elementwise("sigmoid_forward", n, {x, y});
  launch_linear(sigmoid_forward_kernel, n, launch_, x, y, n);
}

void CudaBackend::sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) {
  checks::elementwise("sigmoid_backward", n, {dy, y, dx});
  launch_linear(sigmoid_backward_kernel, n, launch_, dy, y, dx, n);
}

}  // namespace ich::ICH_CUDA_NS
