// The emulator itself (kernels/emu/cuda_emu.h): barriers, warp shuffles, atomics, shared
// memory, launch geometry, the thread orders that expose a missing barrier, and the strict
// mode and deadlock reports. Each test kernel is small and checked against what CUDA
// defines, on exact integer-valued data.
#ifdef ICH_HAVE_CUDA_EMU

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/emu_kernels.h"
#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace {

using ich::emu::Order;

// Restores the emulator's global settings when a test ends.
struct EmuSettingsGuard {
  Order order = ich::emu::order();
  bool strict = ich::emu::strict();
  ~EmuSettingsGuard() {
    ich::emu::set_order(order);
    ich::emu::set_strict(strict);
  }
};

using ich::test::launch_error;
using ich::test::shift_through_shared_kernel;

// ---- kernels

// out[block] = sum of x over the block's threads: shuffles within warps, shared memory
// across warps, one barrier. blockDim is 2-D here, so the linear thread id is computed.
__global__ void block_sum_kernel(const float* x, float* out) {
  __shared__ float warp_sums[32];
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  const int threads = blockDim.x * blockDim.y;
  const int block = blockIdx.x;
  float v = x[block * threads + tid];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (tid % 32 == 0) warp_sums[tid / 32] = v;
  __syncthreads();
  if (tid < 32) {
    float w = tid < threads / 32 ? warp_sums[tid] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) w += __shfl_down_sync(0xffffffffu, w, offset);
    if (tid == 0) out[block] = w;
  }
}

__global__ void divergent_barrier_kernel(float* y) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  y[threadIdx.x] = 1.0f;
}

__global__ void early_exit_barrier_kernel(float* y) {
  if (threadIdx.x >= 32) return;
  __syncthreads();
  y[threadIdx.x] = 1.0f;
}

__global__ void half_warp_shuffle_deadlock_kernel(float* y) {
  float v = float(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
  __syncthreads();
  y[threadIdx.x] = v;
}

// out (6, 32): for every lane the results of the six shuffles below.
__global__ void shuffles_kernel(int* out) {
  const int lane = threadIdx.x;
  const int v = 100 + lane;
  out[0 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 3);
  out[1 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, 3);
  out[2 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 5);
  out[3 * 32 + lane] = __shfl_sync(0xffffffffu, v, (lane * 7) % 32);
  out[4 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 3, 8);
  out[5 * 32 + lane] = __shfl_sync(0xffffffffu, v, 2, 8);
}

__global__ void atomic_add_kernel(float* out, int* count) {
  atomicAdd(&out[threadIdx.x % 4], 1.0f);
  atomicAdd(count, 1);
}

// y[block] = the dynamic shared memory as first seen (NaN), then a block-local sum.
__global__ void dynamic_shared_kernel(float* first_seen, float* y) {
  ICH_EXTERN_SHARED(float, scratch);
  if (threadIdx.x == 0) first_seen[blockIdx.x] = scratch[0];
  __syncthreads();
  scratch[threadIdx.x] = float(blockIdx.x + threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (unsigned i = 0; i < blockDim.x; ++i) s += scratch[i];
    y[blockIdx.x] = s;
  }
}

// Every (block, thread) of a 3-D grid of 3-D blocks writes its linear index once.
__global__ void geometry_kernel(int* hits) {
  const int block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const int thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const int threads = blockDim.x * blockDim.y * blockDim.z;
  atomicAdd(&hits[block * threads + thread], 1);
}

// ---- tests

TEST_CASE("emu: a block reduction with barriers and shuffles is exact in every thread order",
          "[parity]") {
  EmuSettingsGuard guard;
  const int blocks = 5, threads = 32 * 6;  // a 32 x 6 block
  std::vector<float> x(blocks * threads);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 97);
  std::vector<float> expected(blocks, 0.0f);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) expected[b] += x[b * threads + t];
  for (Order order : {Order::forward, Order::reverse, Order::shuffled}) {
    ich::emu::set_order(order);
    std::vector<float> out(blocks, -1.0f);
    REQUIRE(launch_error(block_sum_kernel, dim3(blocks), dim3(32, 6), 0, x.data(), out.data()) ==
            "");
    CHECK(out == expected);
  }
}

TEST_CASE("emu: a missing __syncthreads gives wrong results in some thread order", "[parity]") {
  EmuSettingsGuard guard;
  int run = 0;
  // Fresh values every launch, so stale shared memory from an earlier launch never matches.
  auto shift_is_right = [&run](bool with_barrier) {
    ++run;
    std::vector<float> x(64), y(64, -1.0f);
    for (int i = 0; i < 64; ++i) x[i] = float(run * 1000 + i);
    REQUIRE(launch_error(shift_through_shared_kernel, dim3(1), dim3(64), 0, x.data(), y.data(),
                         with_barrier) == "");
    for (int i = 0; i < 64; ++i)
      if (y[i] != (i + 1 < 64 ? x[i + 1] : 0.0f)) return false;
    return true;
  };
  int wrong_without_barrier = 0;
  for (Order order : {Order::forward, Order::reverse, Order::shuffled}) {
    ich::emu::set_order(order);
    CHECK(shift_is_right(true));
    wrong_without_barrier += shift_is_right(false) ? 0 : 1;
  }
  // Forward order runs thread t to its end before thread t+1 writes: the read is stale.
  ich::emu::set_order(Order::forward);
  CHECK_FALSE(shift_is_right(false));
  CHECK(wrong_without_barrier >= 1);
}

TEST_CASE("emu: strict mode fails divergent barriers and barriers after an exit", "[parity]") {
  EmuSettingsGuard guard;
  std::vector<float> y(64, 0.0f);
  ich::emu::set_strict(true);
  const std::string divergent =
      launch_error(divergent_barrier_kernel, dim3(1), dim3(64), 0, y.data());
  CHECK_THAT(divergent,
             Catch::Contains("different __syncthreads()") && Catch::Contains("emu_selftest.cpp"));
  const std::string exited =
      launch_error(early_exit_barrier_kernel, dim3(1), dim3(64), 0, y.data());
  CHECK_THAT(exited, Catch::Contains("exited while"));
  // Relaxed: exited threads count as arrived, as on most GPUs in practice.
  ich::emu::set_strict(false);
  CHECK(launch_error(early_exit_barrier_kernel, dim3(1), dim3(64), 0, y.data()) == "");
  CHECK(y[0] == 1.0f);
}

TEST_CASE("emu: a warp shuffle that not every lane reaches is reported as a deadlock", "[parity]") {
  std::vector<float> y(32, 0.0f);
  const std::string error =
      launch_error(half_warp_shuffle_deadlock_kernel, dim3(1), dim3(32), 0, y.data());
  CHECK_THAT(error, Catch::Contains("deadlock") && Catch::Contains("warp shuffle"));
}

TEST_CASE("emu: warp shuffles follow CUDA's definitions, including width", "[parity]") {
  std::vector<int> out(6 * 32, -1);
  REQUIRE(launch_error(shuffles_kernel, dim3(1), dim3(32), 0, out.data()) == "");
  for (int lane = 0; lane < 32; ++lane) {
    const int v = 100 + lane;
    INFO("lane " << lane);
    CHECK(out[0 * 32 + lane] == (lane + 3 < 32 ? v + 3 : v));     // down: own value past the end
    CHECK(out[1 * 32 + lane] == (lane >= 3 ? v - 3 : v));         // up: own value before 0
    CHECK(out[2 * 32 + lane] == 100 + (lane ^ 5));                // butterfly
    CHECK(out[3 * 32 + lane] == 100 + (lane * 7) % 32);           // indexed
    CHECK(out[4 * 32 + lane] == (lane % 8 + 3 < 8 ? v + 3 : v));  // down within groups of 8
    CHECK(out[5 * 32 + lane] == 100 + (lane / 8) * 8 + 2);        // lane 2 of each group of 8
  }
}

TEST_CASE("emu: atomicAdd from many blocks on several workers loses nothing", "[parity]") {
  std::vector<float> out(4, 0.0f);
  int count = 0;
  REQUIRE(launch_error(atomic_add_kernel, dim3(64), dim3(256), 0, out.data(), &count) == "");
  CHECK(count == 64 * 256);
  for (float v : out) CHECK(v == 64.0f * 256.0f / 4.0f);
}

TEST_CASE("emu: dynamic shared memory is per block and starts as NaN", "[parity]") {
  const int blocks = 6, threads = 40;
  std::vector<float> first_seen(blocks, 0.0f), y(blocks, 0.0f);
  REQUIRE(launch_error(dynamic_shared_kernel, dim3(blocks), dim3(threads), threads * sizeof(float),
                       first_seen.data(), y.data()) == "");
  for (int b = 0; b < blocks; ++b) {
    CHECK(std::isnan(first_seen[b]));
    CHECK(y[b] == float(b * threads + threads * (threads - 1) / 2));
  }
}

TEST_CASE("emu: 3-D grids of 3-D blocks visit every thread exactly once", "[parity]") {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<int> hits(3 * 2 * 2 * 4 * 3 * 2, 0);
  REQUIRE(launch_error(geometry_kernel, grid, block, 0, hits.data()) == "");
  for (int h : hits) CHECK(h == 1);
}

TEST_CASE("emu: an invalid launch configuration throws ich::Error through launch()", "[parity]") {
  std::vector<int> hits(8, 0);
  ich::cuda_emu::LaunchContext ctx;
  ctx.stream = nullptr;
  CHECK_THROWS_WITH(
      ich::cuda_emu::launch(geometry_kernel, dim3(1), dim3(2048), 0, ctx, hits.data()),
      Catch::Contains("cudaErrorInvalidConfiguration") && Catch::Contains("1 to 1024 threads"));
  CHECK(cudaGetLastError() == cudaSuccess);  // the error was consumed by the check
}

}  // namespace

#endif  // ICH_HAVE_CUDA_EMU
