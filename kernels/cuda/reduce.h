// Block-wide float32 sums for the reduction kernels: warp shuffles inside each warp, then
// shared memory across the warps. Used by the two-pass reductions of elementwise.cu and
// loss.cu (first pass: one partial per block into the backend's scratch; second pass: one
// block sums the partials and finishes), so results are deterministic for a given grid.
//
// Every thread of the block must call block_sum (it holds barriers); blockDim.x must be a
// multiple of 32 and at most 1024. The result is valid in thread 0.
#pragma once

#include "kernels/cuda/runtime.h"

namespace ich::ICH_CUDA_NS {

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = warpSize / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sums each of the kValues values over the block, in place (valid in thread 0).
template <int kValues>
__device__ __forceinline__ void block_sum(float (&v)[kValues]) {
  __shared__ float warp_partials[kValues][32];
  const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  const int warps = blockDim.x / warpSize;
  for (int j = 0; j < kValues; ++j) {
    v[j] = warp_sum(v[j]);
    if (lane == 0) warp_partials[j][warp] = v[j];
  }
  __syncthreads();
  if (warp == 0)
    for (int j = 0; j < kValues; ++j) v[j] = warp_sum(lane < warps ? warp_partials[j][lane] : 0.0f);
  __syncthreads();  // warp_partials may be reused by the next call
}

constexpr int kReduceThreads = 256;   // first pass
constexpr int kFinishThreads = 1024;  // second pass: one thread per first-pass block

}  // namespace ich::ICH_CUDA_NS
