// Per-channel bias of an NCHW tensor.
//   bias_add:  y (n, c, hw) += bias (c), one thread per element (grid-stride).
//   bias_grad: db (c) = sum of dy (n, c, hw) over n and hw; one block per channel sums in
//              float32 (channel_reduce.cuh), so each db[ch] is written by exactly one block
//              and no atomics are needed.
#include "kernels/cuda/channel_reduce.cuh"
#include "kernels/cuda/conv_kernels.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

using namespace channel_reduce;

// ---- kernels

__global__ void bias_add_kernel(float* __restrict__ y, const float* __restrict__ bias, int c,
                                int64_t hw, int64_t total) {
  ICH_GRID_STRIDE_LOOP(e, total) {
    y[e] += bias[(e / hw) % c];
  }
}

__global__ void bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ db, int n, int c,
                                 int64_t hw) {
  __shared__ float scratch[kWarpSize];
  for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float partial = 0.0f;
    for (ChannelWalk it(n, c, hw, ch); it.valid(); it.next()) partial += dy[it.offset()];
    const float total = block_sum(partial, scratch);
    if (threadIdx.x == 0) db[ch] = total;
  }
}

}  // namespace

// ---- launchers

void bias_add(const LaunchContext& ctx, float* y, const float* bias, int n, int c, int64_t hw) {
  const int64_t total = int64_t(n) * c * hw;
  launch_linear(bias_add_kernel, total, ctx, y, bias, c, hw, total);
}

void bias_grad(const LaunchContext& ctx, const float* dy, float* db, int n, int c, int64_t hw) {
  if (c <= 0) return;
  launch(bias_grad_kernel, dim3(grid_for(ctx, c, 1)), dim3(kChannelThreads), 0, ctx, dy, db, n, c,
         hw);
}

// ---- CudaBackend members

void CudaBackend::bias_add(float* y, const float* bias, int n, int c, int64_t hw) {
  checks::bias_add(y, bias, n, c, hw);
  if (int64_t(n) * c * hw == 0) return;
  ICH_CUDA_NS::bias_add(launch_context(), y, bias, n, c, hw);
}

void CudaBackend::bias_grad(const float* dy, float* db, int n, int c, int64_t hw) {
  checks::bias_grad(dy, db, n, c, hw);
  if (c == 0) return;
  ICH_CUDA_NS::bias_grad(launch_context(), dy, db, n, c, hw);
}

}  // namespace ich::ICH_CUDA_NS
