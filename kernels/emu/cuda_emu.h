// cuda-emu: runs the kernels of kernels/cuda/*.cu on the CPU, compiled by the host compiler.
//
// This header supplies the subset of CUDA that the kernels may use, and nothing else, so
// a kernel that steps outside it fails to compile here on purpose:
//   threadIdx, blockIdx, blockDim, gridDim, warpSize, dim3, uint3
//   __global__ __device__ __host__ __forceinline__ __launch_bounds__
//   __shared__ (static arrays inside a kernel) and ICH_EXTERN_SHARED(type, name) for the
//   dynamic shared memory of the launch
//   __syncthreads()
//   atomicAdd (float, int, unsigned, unsigned long long)
//   __shfl_sync / __shfl_down_sync / __shfl_up_sync / __shfl_xor_sync (4- and 8-byte values)
//   the math of <cmath> (expf, logf, sqrtf, fmaxf, ...)
//   the runtime calls the backend uses: cudaMalloc/Free, cudaMemcpy[Async], cudaMemset[Async],
//   streams, events, cudaGetLastError/ErrorName/ErrorString, cudaGetDeviceCount/SetDevice
//   ich::emu::launch(kernel, grid, block, smem, stream, args...), which kernels/cuda/runtime.h
//   turns into <<<grid, block, smem, stream>>> under nvcc
//
// How a launch runs (fibers, the worker pool, the orders and strict mode that find bugs, what
// ThreadSanitizer and AddressSanitizer builds add, and the limits) is written down in
// kernels/emu/cuda_emu.cpp, which holds that machinery and is built once, in ich_kernels_emu.
// What stays here is what a kernel's code calls on every access: threadIdx and friends read
// a per-thread view the scheduler fills before it resumes a CUDA thread, and the atomics.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- the CUDA vocabulary
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define ICH_EXTERN_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::ich::emu::detail::kernel_view().dynamic_smem)

constexpr int warpSize = 32;

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct ich_emu_stream {};
using cudaStream_t = ich_emu_stream*;
struct ich_emu_event;  // a recorded time (cuda_emu.cpp)
using cudaEvent_t = ich_emu_event*;
constexpr unsigned cudaStreamNonBlocking = 1;

namespace ich::emu {

enum class Order { forward, reverse, shuffled };

// ---- settings for tests and tools (defaults: ICH_EMU_ORDER, ICH_EMU_STRICT, ICH_EMU_SEED,
// ICH_EMU_WORKERS)
void set_order(Order order);
Order order();
void set_strict(bool strict);
bool strict();
void set_seed(uint64_t seed);
void set_workers(int workers);
int workers();

namespace detail {

// What the CUDA thread running on this OS thread sees: written by the scheduler before it
// resumes a thread (thread_idx) or starts a block (the rest), read by the kernel's code.
// Constant-initialised and trivially destructible, so reading it costs a TLS access only.
struct KernelView {
  uint3 thread_idx{0, 0, 0};
  uint3 block_idx{0, 0, 0};
  dim3 block_dim, grid_dim;
  void* dynamic_smem = nullptr;
};
inline KernelView& kernel_view() {
  static thread_local KernelView view;
  return view;
}

// ---- called from a CUDA thread (cuda_emu.cpp): they switch to the block's scheduler
void syncthreads(const char* file, int line);
enum class WarpOp : int { idx, down, up, bfly };
// width: a power of two up to 32, checked here for every shuffle.
uint32_t warp_exchange(WarpOp op, unsigned mask, uint32_t value, int arg, int width,
                       const char* file, int line);

// Runs body(call) in every thread of the grid; a failure is left for cudaGetLastError().
cudaError_t run_grid(void (*body)(const void*), const void* call, dim3 grid, dim3 block,
                     size_t smem_bytes);

template <typename T>
inline uint32_t to_bits32(T v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
template <typename T>
inline T from_bits32(uint32_t u) {
  T v;
  std::memcpy(&v, &u, 4);
  return v;
}

template <typename T>
inline T shuffle(WarpOp op, unsigned mask, T v, int arg, int width, const char* file, int line) {
  static_assert(std::is_trivially_copyable<T>::value && (sizeof(T) == 4 || sizeof(T) == 8),
                "cuda-emu shuffles 4- and 8-byte values");
  if constexpr (sizeof(T) == 4) {
    return from_bits32<T>(warp_exchange(op, mask, to_bits32(v), arg, width, file, line));
  } else {
    uint32_t half[2];
    std::memcpy(half, &v, 8);
    half[0] = warp_exchange(op, mask, half[0], arg, width, file, line);
    half[1] = warp_exchange(op, mask, half[1], arg, width, file, line);
    T out;
    std::memcpy(&out, half, 8);
    return out;
  }
}

}  // namespace detail

// launch(kernel, grid, block, smem, stream, args...): arguments are converted to the
// kernel's parameter types once, as nvcc does, and every thread calls the kernel with them.
// A failure is reported through cudaGetLastError(), as on a GPU.
template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
            cudaStream_t /*stream: everything is synchronous*/, Args&&... args) {
  static_assert(sizeof...(KernelArgs) == sizeof...(Args), "wrong number of kernel arguments");
  struct Call {
    void (*kernel)(KernelArgs...);
    std::tuple<std::decay_t<KernelArgs>...> args;
  };
  const Call call{kernel, std::tuple<std::decay_t<KernelArgs>...>(std::forward<Args>(args)...)};
  detail::run_grid(
      [](const void* p) {
        const Call& c = *static_cast<const Call*>(p);
        std::apply(c.kernel, c.args);
      },
      &call, grid, block, smem_bytes);
}

}  // namespace ich::emu

// ---- what kernels write
#define threadIdx (static_cast<const uint3&>(::ich::emu::detail::kernel_view().thread_idx))
#define blockIdx (static_cast<const uint3&>(::ich::emu::detail::kernel_view().block_idx))
#define blockDim (static_cast<const dim3&>(::ich::emu::detail::kernel_view().block_dim))
#define gridDim (static_cast<const dim3&>(::ich::emu::detail::kernel_view().grid_dim))
#define __syncthreads() ::ich::emu::detail::syncthreads(__FILE__, __LINE__)

// Shuffles are functions, so that the optional width keeps its default; the call site is
// recorded for the messages of strict mode.
template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ich::emu::detail::shuffle(::ich::emu::detail::WarpOp::idx, mask, var, src_lane, width,
                                     file, line);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ich::emu::detail::shuffle(::ich::emu::detail::WarpOp::down, mask, var, int(delta), width,
                                     file, line);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                        const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ich::emu::detail::shuffle(::ich::emu::detail::WarpOp::up, mask, var, int(delta), width,
                                     file, line);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                         const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ich::emu::detail::shuffle(::ich::emu::detail::WarpOp::bfly, mask, var, lane_mask, width,
                                     file, line);
}

// ---- atomics: relaxed, as CUDA's; really atomic, because blocks run on several threads
inline float atomicAdd(float* address, float value) {
  using bits_alias = uint32_t __attribute__((may_alias));
  bits_alias* bits = reinterpret_cast<bits_alias*>(address);
  uint32_t old = __atomic_load_n(bits, __ATOMIC_RELAXED);
  for (;;) {
    float f;
    std::memcpy(&f, &old, 4);
    f += value;
    uint32_t desired;
    std::memcpy(&desired, &f, 4);
    if (__atomic_compare_exchange_n(bits, &old, desired, true, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
      float previous;
      std::memcpy(&previous, &old, 4);
      return previous;
    }
  }
}
inline int atomicAdd(int* address, int value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}

// ---- the runtime API, as host operations on one emulated device (cuda_emu.cpp)
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
// The detail of the host thread's most recent failure when it is of this code.
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <typename T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
