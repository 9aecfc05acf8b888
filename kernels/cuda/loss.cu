// Losses over all n elements of p (probabilities) and t (targets in [0, 1]).
//
// Soft Dice (medicaltorch's global form, negative):
//   I = sum p t, U = sum p + sum t, loss = -(2 I + s) / (U + s),  stats = {I, U}
//   dloss/dp_i = -2 t_i / (U + s) + (2 I + s) / (U + s)^2
// Mean BCE (PyTorch's binary_cross_entropy):
//   loss = mean((t - 1) max(log1p(-p), -100) - t max(log p, -100))
//   dloss/dp_i = (p - t) / max(p (1 - p), 1e-12) / n
// Forward passes are one fused two-pass reduction (reduce.h): pass one reads p and t once
// and writes per-block partials of every sum it needs; pass two (one block) adds them in
// block order and writes stats and loss. Backward passes read stats and dloss from device
// memory, so a training step never waits for the host. Unlike the CPU reference, p outside
// [0, 1] is not diagnosed here (that would need a copy to the host); it shows as NaN.
#include <algorithm>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/reduce.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

// partials (blocks, 2): {sum p t, sum p + t} of this block's share.
__global__ void soft_dice_partials_kernel(const float* p, const float* t, int64_t n,
                                          float* partials) {
  float v[2] = {0.0f, 0.0f};
  ICH_GRID_STRIDE_LOOP(i, n) {
    const float pi = p[i], ti = t[i];
    v[0] += pi * ti;
    v[1] += pi + ti;
  }
  block_sum(v);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = v[0];
    partials[2 * blockIdx.x + 1] = v[1];
  }
}

__global__ void soft_dice_finish_kernel(const float* partials, int count, float smooth,
                                        float* stats, float* loss) {
  const bool mine = int(threadIdx.x) < count;
  float v[2] = {mine ? partials[2 * threadIdx.x] : 0.0f,
                mine ? partials[2 * threadIdx.x + 1] : 0.0f};
  block_sum(v);
  if (threadIdx.x == 0) {
    stats[0] = v[0];
    stats[1] = v[1];
    loss[0] = -(2.0f * v[0] + smooth) / (v[1] + smooth);
  }
}

__global__ void soft_dice_backward_kernel(const float* t, int64_t n, float smooth,
                                          const float* stats, const float* dloss, float* dp) {
  const float denominator = stats[1] + smooth;
  const float g = dloss[0];
  const float from_union = g * (2.0f * stats[0] + smooth) / (denominator * denominator);
  const float per_target = -2.0f * g / denominator;
  ICH_GRID_STRIDE_LOOP(i, n) {
    dp[i] = per_target * t[i] + from_union;
  }
}

__global__ void bce_partials_kernel(const float* p, const float* t, int64_t n, float* partials) {
  float v[1] = {0.0f};
  ICH_GRID_STRIDE_LOOP(i, n) {
    const float pi = p[i], ti = t[i];
    const float log_p = fmaxf(logf(pi), -100.0f);
    const float log_1mp = fmaxf(log1pf(-pi), -100.0f);
    v[0] += (ti - 1.0f) * log_1mp - ti * log_p;
  }
  block_sum(v);
  if (threadIdx.x == 0) partials[blockIdx.x] = v[0];
}

__global__ void bce_finish_kernel(const float* partials, int count, int64_t n, float* loss) {
  float v[1] = {int(threadIdx.x) < count ? partials[threadIdx.x] : 0.0f};
  block_sum(v);
  if (threadIdx.x == 0) loss[0] = float(double(v[0]) / double(n));
}

__global__ void bce_backward_kernel(const float* p, const float* t, int64_t n, const float* dloss,
                                    float* dp) {
  const float g = dloss[0];
  const float count = float(n);
  ICH_GRID_STRIDE_LOOP(i, n) {
    const float pi = p[i];
    dp[i] = g * (pi - t[i]) / fmaxf((1.0f - pi) * pi, 1e-12f) / count;
  }
}

// ---- CudaBackend members

void CudaBackend::soft_dice_forward(const float* p, const float* t, int64_t n, float smooth,
                                    float* stats, float* loss) {
  checks::soft_dice_forward(p, t, n, stats, loss);
  const int blocks = std::min<int>(int(grid_for(launch_, n, kReduceThreads)), kMaxReductionBlocks);
  launch(soft_dice_partials_kernel, dim3(blocks), dim3(kReduceThreads), 0, launch_, p, t, n,
         reduction_scratch_);
  launch(soft_dice_finish_kernel, dim3(1), dim3(kFinishThreads), 0, launch_, reduction_scratch_,
         blocks, smooth, stats, loss);
}

void CudaBackend::soft_dice_backward(const float* p, const float* t, int64_t n, float smooth,
                                     const float* stats, const float* dloss, float* dp) {
  checks::soft_dice_backward(p, t, n, stats, dloss, dp);
  launch_linear(soft_dice_backward_kernel, n, launch_, t, n, smooth, stats, dloss, dp);
}

void CudaBackend::bce_forward(const float* p, const float* t, int64_t n, float* loss) {
  checks::bce_forward(p, t, n, loss);
  const int blocks = std::min<int>(int(grid_for(launch_, n, kReduceThreads)), kMaxReductionBlocks);
  launch(bce_partials_kernel, dim3(blocks), dim3(kReduceThreads), 0, launch_, p, t, n,
         reduction_scratch_);
  launch(bce_finish_kernel, dim3(1), dim3(kFinishThreads), 0, launch_, reduction_scratch_, blocks,
         n, loss);
}

void CudaBackend::bce_backward(const float* p, const float* t, int64_t n, const float* dloss,
                               float* dp) {
  checks::bce_backward(p, t, n, dloss, dp);
  launch_linear(bce_backward_kernel, n, launch_, p, t, n, dloss, dp);
}

}  // namespace ich::ICH_CUDA_NS
