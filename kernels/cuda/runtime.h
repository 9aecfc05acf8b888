// What every file of kernels/cuda needs from the CUDA runtime, in both flavours.
//
// Under nvcc this is <cuda_runtime.h> (+ cuBLAS); under the host compiler with
// ICH_CUDA_EMU it is kernels/emu/cuda_emu.h, which supplies the same names on the CPU.
// On top of either it gives:
//   CUDA_CHECK / CUBLAS_CHECK / CUDNN_CHECK  throw ich::Error with the failing statement,
//                                            file:line and the library's message
//   ceil_div                                 for grid sizes
//   LaunchContext, grid_for                  the stream and the grid cap of one backend
//   launch(kernel, grid, block, smem, stream, args...)
//                                            <<<grid, block, smem, stream>>>(args...) under
//                                            nvcc, the emulator otherwise; then checks the
//                                            launch (and synchronises in debug mode)
//   ICH_GRID_STRIDE_LOOP(i, n)               for (int64_t i = ...; i < n; i += stride) over a
//                                            1-D grid, so any grid size is correct
// Kernels keep to the subset documented in kernels/emu/cuda_emu.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "core/ceil_div.h"
#include "core/error.h"
#include "kernels/cuda/flavour.h"

#if defined(ICH_CUDA_EMU)
#include "kernels/emu/cuda_emu.h"
#else
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

// CUDA_CHECK(cudaMemcpy(...)): throws ich::Error naming the statement and the CUDA error.
#define CUDA_CHECK(stmt)                                                                       \
  do {                                                                                         \
    const cudaError_t ich_cuda_err_ = (stmt);                                                  \
    if (ich_cuda_err_ != cudaSuccess)                                                          \
      ::ich::throw_error(#stmt, __FILE__, __LINE__,                                            \
                         std::string("CUDA error ") + cudaGetErrorName(ich_cuda_err_) + ": " + \
                             cudaGetErrorString(ich_cuda_err_));                               \
  } while (0)

#if !defined(ICH_CUDA_EMU)
#define CUBLAS_CHECK(stmt)                                                                    \
  do {                                                                                        \
    const cublasStatus_t ich_cublas_st_ = (stmt);                                             \
    if (ich_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                              \
      ::ich::throw_error(#stmt, __FILE__, __LINE__,                                           \
                         std::string("cuBLAS error ") + cublasGetStatusName(ich_cublas_st_) + \
                             ": " + cublasGetStatusString(ich_cublas_st_));                   \
  } while (0)

// Usable where <cudnn.h> is included (kernels/cuda/cudnn_peer.*).
#define CUDNN_CHECK(stmt)                                                                    \
  do {                                                                                       \
    const cudnnStatus_t ich_cudnn_st_ = (stmt);                                              \
    if (ich_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                               \
      ::ich::throw_error(#stmt, __FILE__, __LINE__,                                          \
                         std::string("cuDNN error: ") + cudnnGetErrorString(ich_cudnn_st_)); \
  } while (0)
#endif

// A grid-stride loop over [0, n) for a 1-D launch: correct for any grid, so launchers may
// cap the grid (LaunchContext::max_blocks) without losing elements.
#define ICH_GRID_STRIDE_LOOP(i, n)                                                 \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < int64_t(n); \
       i += int64_t(blockDim.x) * gridDim.x)

namespace ich::ICH_CUDA_NS {

constexpr int kThreadsPerBlock = 256;  // the default 1-D block

// Where and how a backend launches: its stream, the cap on 1-D grids, the debug switch.
struct LaunchContext {
  cudaStream_t stream = nullptr;
  int max_blocks = 1;
  bool sync_after_launch = false;
};

// The cap on a 1-D grid when the options leave it at 0. On a GPU, enough blocks to fill
// every SM many times over; in the emulator each block costs its threads' fibers, so a
// few blocks per worker thread keep launches cheap while the grid-stride loops still run.
#if defined(ICH_CUDA_EMU)
constexpr int kDefaultMaxBlocks = 64;
#else
constexpr int kDefaultMaxBlocks = 65535;
#endif

// Blocks of `block` threads for n elements, at least 1, at most ctx.max_blocks.
inline unsigned grid_for(const LaunchContext& ctx, int64_t n, int block = kThreadsPerBlock) {
  int64_t blocks = ceil_div(n, block);
  if (blocks < 1) blocks = 1;
  if (blocks > ctx.max_blocks) blocks = ctx.max_blocks;
  return static_cast<unsigned>(blocks);
}

// Throws when the last launch failed; synchronises first when asked to, so that a fault
// is reported at the launch that caused it rather than at the next copy.
inline void check_launch(const LaunchContext& ctx) {
  CUDA_CHECK(cudaGetLastError());
  if (ctx.sync_after_launch) CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

#if defined(ICH_CUDA_EMU) || defined(__CUDACC__)
// launch(kernel, grid, block, smem, ctx, args...): the one way kernels are started.
template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
            const LaunchContext& ctx, Args&&... args) {
#if defined(ICH_CUDA_EMU)
  ::ich::emu::launch(kernel, grid, block, smem_bytes, ctx.stream, std::forward<Args>(args)...);
#else
  // clang-format off (it splits the launch chevrons in a .h file)
  kernel<<<grid, block, smem_bytes, ctx.stream>>>(std::forward<Args>(args)...);
  // clang-format on
#endif
  check_launch(ctx);
}

// A 1-D launch over n elements with the default block; does nothing when n == 0.
template <typename... KernelArgs, typename... Args>
void launch_linear(void (*kernel)(KernelArgs...), int64_t n, const LaunchContext& ctx,
                   Args&&... args) {
  if (n <= 0) return;
  launch(kernel, dim3(grid_for(ctx, n)), dim3(kThreadsPerBlock), 0, ctx,
         std::forward<Args>(args)...);
}
#endif

}  // namespace ich::ICH_CUDA_NS
