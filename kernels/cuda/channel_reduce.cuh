// Per-channel reductions for the kernels that give one block to one channel of an NCHW
// tensor (bias_grad, batch-norm statistics and gradients).
//
// A channel's m = n * hw elements are visited by the block's threads in a strided walk over
// (image, position) that never divides; the per-thread float partial sums are combined by
// warp shuffles and then across warps through shared memory, in a fixed tree order, so the
// result depends only on the block size, never on timing.
//
// Assumptions: blockDim.x is a multiple of 32 and at most 1024 (kChannelThreads below), the
// shuffles use the full mask, every thread of the block calls the block sums (they hold
// __syncthreads).
#pragma once

#include "kernels/cuda/runtime.h"

// A namespace of its own: reduce.h (the global sums) has a warp_sum of another contract.
namespace ich::ICH_CUDA_NS::channel_reduce {

constexpr int kChannelThreads = 256;  // the block of every per-channel kernel
constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(kFullMask, v, offset);
  return v;
}

// The sum of v over the block, returned to every thread. scratch: __shared__ float[32] of
// the calling kernel. Ends with a barrier, so scratch may be reused by the next call.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  // Every warp reduces the warp totals itself, which saves a broadcast and a barrier.
  v = lane < warps ? scratch[lane] : 0.0f;
  v = warp_sum(v);
  v = __shfl_sync(kFullMask, v, 0);
  __syncthreads();
  return v;
}

// Two sums at once. scratch: __shared__ float[64].
__device__ __forceinline__ void block_sum2(float& a, float& b, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  a = warp_sum(a);
  b = warp_sum(b);
  if (lane == 0) {
    scratch[warp] = a;
    scratch[kWarpSize + warp] = b;
  }
  __syncthreads();
  a = lane < warps ? scratch[lane] : 0.0f;
  b = lane < warps ? scratch[kWarpSize + lane] : 0.0f;
  a = __shfl_sync(kFullMask, warp_sum(a), 0);
  b = __shfl_sync(kFullMask, warp_sum(b), 0);
  __syncthreads();
}

// Walks the elements of channel ch of an (n, c, hw) tensor that belong to this thread:
// element j = threadIdx.x, threadIdx.x + blockDim.x, ... of the channel's n*hw, as the
// offset (image*c + ch)*hw + position. Usage:
//   for (ChannelWalk it(n, c, hw, ch); it.valid(); it.next()) use(x[it.offset()]);
struct ChannelWalk {
  int64_t image, position;
  const int64_t n, c, hw, ch;

  __device__ ChannelWalk(int n_, int c_, int64_t hw_, int ch_)
      : image(0), position(threadIdx.x), n(n_), c(c_), hw(hw_), ch(ch_) {
    settle();
  }
  __device__ bool valid() const { return image < n; }
  __device__ int64_t offset() const { return (image * c + ch) * hw + position; }
  __device__ void next() {
    position += blockDim.x;
    settle();
  }
  // Carries position overflow into the image index; loops only when hw < blockDim.x.
  __device__ void settle() {
    while (position >= hw && image < n) {
      position -= hw;
      ++image;
    }
  }
};

}  // namespace ich::ICH_CUDA_NS::channel_reduce
