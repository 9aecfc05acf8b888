// Elementwise add / mul / scale / axpy and the global sum, over n contiguous floats.
//
// sum is a two-pass reduction (reduce.h): pass one writes one float32 partial per block
// into the backend's reduction scratch, pass two (one block) adds the partials in block
// order and writes out[0]. No atomics, so the result is the same on every run with the
// same grid.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/reduce.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    y[i] = a[i] + b[i];
  }
}

__global__ void mul_kernel(const float* a, const float* b, float* y, int64_t n) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    y[i] = a[i] * b[i];
  }
}

__global__ void scale_kernel(const float* x, float* y, int64_t n, float alpha) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    y[i] = alpha * x[i];
  }
}

__global__ void axpy_kernel(float alpha, const float* x, float* y, int64_t n) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    y[i] += alpha * x[i];
  }
}

// partials[blockIdx.x] = sum of this block's grid-stride share of x.
__global__ void sum_partials_kernel(const float* x, int64_t n, float* partials) {
  float v[1] = {0.0f};
  ICH_GRID_STRIDE_LOOP(i, n) {
    v[0] += x[i];
  }
  block_sum(v);
  if (threadIdx.x == 0) partials[blockIdx.x] = v[0];
}

// out[0] = sum of partials[0 .. count), count <= blockDim.x.
__global__ void sum_finish_kernel(const float* partials, int count, float* out) {
  float v[1] = {int(threadIdx.x) < count ? partials[threadIdx.x] : 0.0f};
  block_sum(v);
  if (threadIdx.x == 0) out[0] = v[0];
}

// ---- launchers

void sum_launch(const LaunchContext& ctx, const float* x, int64_t n, float* out, float* scratch,
                int max_partials) {
  int blocks = int(grid_for(ctx, n, kReduceThreads));
  if (blocks > max_partials) blocks = max_partials;
  launch(sum_partials_kernel, dim3(blocks), dim3(kReduceThreads), 0, ctx, x, n, scratch);
  launch(sum_finish_kernel, dim3(1), dim3(kFinishThreads), 0, ctx, scratch, blocks, out);
}

// ---- CudaBackend members

void CudaBackend::add(const float* a, const float* b, float* y, int64_t n) {
  checks::elementwise("add", n, {a, b, y});
  launch_linear(add_kernel, n, launch_, a, b, y, n);
}

void CudaBackend::mul(const float* a, const float* b, float* y, int64_t n) {
  checks::elementwise("mul", n, {a, b, y});
  launch_linear(mul_kernel, n, launch_, a, b, y, n);
}

void CudaBackend::scale(const float* x, float* y, int64_t n, float alpha) {
  checks::elementwise("scale", n, {x, y});
  launch_linear(scale_kernel, n, launch_, x, y, n, alpha);
}

void CudaBackend::axpy(float alpha, const float* x, float* y, int64_t n) {
  checks::elementwise("axpy", n, {x, y});
  launch_linear(axpy_kernel, n, launch_, alpha, x, y, n);
}

void CudaBackend::sum(const float* x, int64_t n, float* out) {
  checks::sum(x, n, out);
  // n == 0 still writes 0: the finishing pass sums no partials.
  sum_launch(launch_, x, n, out, reduction_scratch_, kMaxReductionBlocks);
}

}  // namespace ich::ICH_CUDA_NS
