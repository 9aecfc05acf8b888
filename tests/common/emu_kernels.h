// What the tests of the emulator itself (tests/parity/emu_selftest.cpp) and of the race
// detector (tests/tsan/tsan_core.cpp) share: a launch that reports instead of throwing, and
// the kernel whose missing barrier both must catch. Host compiler with kernels/emu only.
#pragma once

#include <string>
#include <utility>

#include "kernels/cuda/runtime.h"

namespace ich::test {

// Launches on the default stream and returns the launch's error text ("" when it succeeded).
template <typename... KernelArgs, typename... Args>
std::string launch_error(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                         Args&&... args) {
  emu::launch(kernel, grid, block, smem, nullptr, std::forward<Args>(args)...);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}

// y[t] = x[t + 1] through shared memory (one block of at most 64 threads); with_barrier
// false drops the barrier the shift needs.
__global__ inline void shift_through_shared_kernel(const float* x, float* y, bool with_barrier) {
  __shared__ float tile[64];
  const int t = threadIdx.x;
  tile[t] = x[t];
  if (with_barrier) __syncthreads();
  y[t] = t + 1 < int(blockDim.x) ? tile[t + 1] : 0.0f;
}

}  // namespace ich::test
