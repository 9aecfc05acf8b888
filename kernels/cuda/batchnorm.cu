// Batch norm over (n, hw) per channel, as PyTorch's BatchNorm2d and kernels/cpu/batchnorm.cpp.
//   x, y, dy, dx (n, c, hw); gamma, beta, running stats, save_mean, save_invstd, dgamma,
//   dbeta (c)
// Train: one block per channel (a grid-stride loop over channels when the grid is capped).
// Two float32 passes give the mean and then the biased variance sum((x - mean)^2) / m,
// m = n * hw (two passes: no cancellation of E[x^2] - mean^2); a third writes
// y = (x - mean) * invstd * gamma + beta. Thread 0 alone writes save_mean, save_invstd and
// the running stats, the running variance with the unbiased var * m / (m - 1).
// Eval: elementwise with the running stats.
// Backward (of train), with xhat = (x - mean) * invstd: one pass sums dy and dy * xhat
// (dbeta, dgamma), a second writes dx = gamma * invstd * (dy - dbeta/m - xhat * dgamma/m).
// All sums: channel_reduce.cuh (warp shuffles, then shared memory), float32.
#include <cmath>

#include "kernels/cuda/channel_reduce.cuh"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

using namespace channel_reduce;

// ---- kernels

__global__ void batch_norm2d_forward_train_kernel(
    const float* __restrict__ x, float* __restrict__ y, const float* __restrict__ gamma,
    const float* __restrict__ beta, float* __restrict__ running_mean,
    float* __restrict__ running_var, float* __restrict__ save_mean, float* __restrict__ save_invstd,
    int n, int c, int64_t hw, float momentum, float eps) {
  __shared__ float scratch[kWarpSize];
  const float m = static_cast<float>(int64_t(n) * hw);
  for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float partial = 0.0f;
    for (ChannelWalk it(n, c, hw, ch); it.valid(); it.next()) partial += x[it.offset()];
    const float mean = block_sum(partial, scratch) / m;

    partial = 0.0f;
    for (ChannelWalk it(n, c, hw, ch); it.valid(); it.next()) {
      const float d = x[it.offset()] - mean;
      partial += d * d;
    }
    const float squares = block_sum(partial, scratch);
    const float invstd = 1.0f / sqrtf(squares / m + eps);

    if (threadIdx.x == 0) {
      save_mean[ch] = mean;
      save_invstd[ch] = invstd;
      const float unbiased_var = squares / (m - 1.0f);
      running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mean;
      running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * unbiased_var;
    }
    const float g = gamma[ch], b = beta[ch];
    for (ChannelWalk it(n, c, hw, ch); it.valid(); it.next()) {
      const int64_t e = it.offset();
      y[e] = (x[e] - mean) * invstd * g + b;
    }
  }
}

__global__ void batch_norm2d_forward_eval_kernel(const float* __restrict__ x, float* __restrict__ y,
                                                 const float* __restrict__ gamma,
                                                 const float* __restrict__ beta,
                                                 const float* __restrict__ running_mean,
                                                 const float* __restrict__ running_var, int c,
                                                 int64_t hw, float eps, int64_t total) {
  ICH_GRID_STRIDE_LOOP(e, total) {
    const int ch = static_cast<int>((e / hw) % c);
    const float invstd = 1.0f / sqrtf(running_var[ch] + eps);
    y[e] = (x[e] - running_mean[ch]) * invstd * gamma[ch] + beta[ch];
  }
}

__global__ void batch_norm2d_backward_kernel(const float* __restrict__ dy,
                                             const float* __restrict__ x,
                                             const float* __restrict__ gamma,
                                             const float* __restrict__ save_mean,
                                             const float* __restrict__ save_invstd,
                                             float* __restrict__ dx, float* __restrict__ dgamma,
                                             float* __restrict__ dbeta, int n, int c, int64_t hw) {
  __shared__ float scratch[2 * kWarpSize];
  const float m = static_cast<float>(int64_t(n) * hw);
  for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
    for (ChannelWalk it(n, c, hw, ch); it.valid(); it.next()) {
      const int64_t e = it.offset();
      sum_dy += dy[e];
      sum_dy_xhat += dy[e] * ((x[e] - mean) * invstd);
    }
    block_sum2(sum_dy, sum_dy_xhat, scratch);
    if (threadIdx.x == 0) {
      dbeta[ch] = sum_dy;
      dgamma[ch] = sum_dy_xhat;
    }
    const float k = gamma[ch] * invstd;
    const float mean_dy = sum_dy / m, mean_dy_xhat = sum_dy_xhat / m;
    for (ChannelWalk it(n, c, hw, ch); it.valid(); it.next()) {
      const int64_t e = it.offset();
      const float xhat = (x[e] - mean) * invstd;
      dx[e] = k * (dy[e] - mean_dy - xhat * mean_dy_xhat);
    }
  }
}

// ---- launchers

void batch_norm2d_forward_train(const LaunchContext& ctx, const float* x, float* y,
                                const float* gamma, const float* beta, float* running_mean,
                                float* running_var, float* save_mean, float* save_invstd, int n,
                                int c, int64_t hw, float momentum, float eps) {
  launch(batch_norm2d_forward_train_kernel, dim3(grid_for(ctx, c, 1)), dim3(kChannelThreads), 0,
         ctx, x, y, gamma, beta, running_mean, running_var, save_mean, save_invstd, n, c, hw,
         momentum, eps);
}

void batch_norm2d_forward_eval(const LaunchContext& ctx, const float* x, float* y,
                               const float* gamma, const float* beta, const float* running_mean,
                               const float* running_var, int n, int c, int64_t hw, float eps) {
  const int64_t total = int64_t(n) * c * hw;
  launch_linear(batch_norm2d_forward_eval_kernel, total, ctx, x, y, gamma, beta, running_mean,
                running_var, c, hw, eps, total);
}

void batch_norm2d_backward(const LaunchContext& ctx, const float* dy, const float* x,
                           const float* gamma, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, int n, int c, int64_t hw) {
  launch(batch_norm2d_backward_kernel, dim3(grid_for(ctx, c, 1)), dim3(kChannelThreads), 0, ctx, dy,
         x, gamma, save_mean, save_invstd, dx, dgamma, dbeta, n, c, hw);
}

}  // namespace

// ---- CudaBackend members

void CudaBackend::batch_norm2d_forward_train(const float* x, float* y, const float* gamma,
                                             const float* beta, float* running_mean,
                                             float* running_var, float* save_mean,
                                             float* save_invstd, int n, int c, int64_t hw,
                                             float momentum, float eps) {
  checks::batch_norm2d_forward_train(x, y, gamma, beta, running_mean, running_var, save_mean,
                                     save_invstd, n, c, hw, momentum, eps);
  ICH_CUDA_NS::batch_norm2d_forward_train(launch_context(), x, y, gamma, beta, running_mean,
                                          running_var, save_mean, save_invstd, n, c, hw, momentum,
                                          eps);
}

void CudaBackend::batch_norm2d_forward_eval(const float* x, float* y, const float* gamma,
                                            const float* beta, const float* running_mean,
                                            const float* running_var, int n, int c, int64_t hw,
                                            float eps) {
  checks::batch_norm2d_forward_eval(x, y, gamma, beta, running_mean, running_var, n, c, hw, eps);
  ICH_CUDA_NS::batch_norm2d_forward_eval(launch_context(), x, y, gamma, beta, running_mean,
                                         running_var, n, c, hw, eps);
}

void CudaBackend::batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                                        const float* save_mean, const float* save_invstd, float* dx,
                                        float* dgamma, float* dbeta, int n, int c, int64_t hw) {
  checks::batch_norm2d_backward(dy, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta, n, c, hw);
  ICH_CUDA_NS::batch_norm2d_backward(launch_context(), dy, x, gamma, save_mean, save_invstd, dx,
                                     dgamma, dbeta, n, c, hw);
}

}  // namespace ich::ICH_CUDA_NS
