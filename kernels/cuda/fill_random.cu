// fill, uniform and normal over n contiguous floats. The draws follow the Philox contract
// of core/philox.h (element i uses counter offset + i), the same function the CPU backend
// calls, so uniform draws are bit-identical to the CPU's; normal draws differ only by the
// device's logf/cosf/sqrtf rounding.
#include "core/philox.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

__global__ void fill_kernel(float* x, int64_t n, float value) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    x[i] = value;
  }
}

__global__ void uniform_kernel(float* x, int64_t n, uint64_t seed, uint64_t offset, float lo,
                               float range) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    x[i] = lo + range * philox_uniform(seed, offset + uint64_t(i));
  }
}

__global__ void normal_kernel(float* x, int64_t n, uint64_t seed, uint64_t offset, float mean,
                              float std) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    x[i] = mean + std * philox_normal(seed, offset + uint64_t(i));
  }
}

// ---- CudaBackend members (the launchers are one line each)

void CudaBackend::fill(float* x, int64_t n, float value) {
  checks::fill(x, n);
  launch_linear(fill_kernel, n, launch_, x, n, value);
}

void CudaBackend::uniform(float* x, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  checks::uniform(x, n, lo, hi);
  launch_linear(uniform_kernel, n, launch_, x, n, seed, offset, lo, hi - lo);
}

void CudaBackend::normal(float* x, int64_t n, uint64_t seed, uint64_t offset, float mean,
                         float std) {
  checks::normal(x, n, std);
  launch_linear(normal_kernel, n, launch_, x, n, seed, offset, mean, std);
}

}  // namespace ich::ICH_CUDA_NS
