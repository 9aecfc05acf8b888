// cuda-emu under ThreadSanitizer (the tsan build: scripts/build.sh tsan; label tsan).
//
// Every CUDA thread is a TSan fiber switched without implied synchronisation, so only
// __syncthreads(), atomics and the launch boundaries order memory between threads.
//   1. The detector works: deliberately racy kernels (a non-atomic scatter-add, a missing
//      __syncthreads, two threads writing one shared slot) run in a child process and
//      must be reported there as data races in that kernel; their corrected versions run
//      the same way and must not be.
//   2. cuda-core's real kernels are clean: every primitive that reduces or accumulates
//      (sum, soft Dice, BCE, axpy, gemm's shared tiles, Adam) and the rest run here, in
//      this process, on tiny shapes over several blocks and two workers, through the
//      parity harness. A race makes TSan fail the process (exit code 66) and so the test.
// The CPU reference runs with one OpenMP thread: libgomp is not instrumented, so its own
// synchronisation would be invisible to TSan.
#include <omp.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "parity/child_process.h"
#include "parity/parity_common.h"

namespace {

// ---- deliberately racy kernels and their corrected twins

// out (n/4) += x (n), one thread per x: four threads add into each out element.
__global__ void racy_scatter_add_kernel(const float* x, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i / 4] += x[i];
}

__global__ void atomic_scatter_add_kernel(const float* x, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) atomicAdd(&out[i / 4], x[i]);
}

// y[t] = x[t + 1] through shared memory, with or without the barrier it needs.
__global__ void shared_shift_kernel(const float* x, float* y, bool with_barrier) {
  __shared__ float tile[64];
  const int t = threadIdx.x;
  tile[t] = x[t];
  if (with_barrier) __syncthreads();
  y[t] = t + 1 < int(blockDim.x) ? tile[t + 1] : 0.0f;
}

// Every thread writes the same shared slot; thread 0 alone writes it when fixed.
__global__ void shared_slot_kernel(float* y, bool only_thread_zero) {
  __shared__ float slot;
  if (!only_thread_zero || threadIdx.x == 0) slot = float(threadIdx.x);
  __syncthreads();
  y[threadIdx.x] = slot;
}

void launch_or_fail(const std::string& error) {
  if (!error.empty()) FAIL(error);
}

template <typename... KernelArgs, typename... Args>
std::string launch_error(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, Args&&... args) {
  ich::emu::launch(kernel, grid, block, 0, nullptr, std::forward<Args>(args)...);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}

// ---- the child processes (hidden: run only by name)

TEST_CASE("child: racy scatter-add", "[.tsan_child]") {
  std::vector<float> x(256, 1.0f), out(64, 0.0f);
  launch_or_fail(
      launch_error(racy_scatter_add_kernel, dim3(2), dim3(128), x.data(), out.data(), 256));
}
TEST_CASE("child: atomic scatter-add", "[.tsan_child]") {
  std::vector<float> x(256, 1.0f), out(64, 0.0f);
  launch_or_fail(
      launch_error(atomic_scatter_add_kernel, dim3(2), dim3(128), x.data(), out.data(), 256));
  for (float v : out) CHECK(v == 4.0f);
}
TEST_CASE("child: missing barrier", "[.tsan_child]") {
  std::vector<float> x(64, 1.0f), y(64, 0.0f);
  launch_or_fail(launch_error(shared_shift_kernel, dim3(1), dim3(64), x.data(), y.data(), false));
}
TEST_CASE("child: with barrier", "[.tsan_child]") {
  std::vector<float> x(64, 1.0f), y(64, 0.0f);
  launch_or_fail(launch_error(shared_shift_kernel, dim3(1), dim3(64), x.data(), y.data(), true));
  CHECK(y[0] == 1.0f);
}
TEST_CASE("child: shared slot written by all", "[.tsan_child]") {
  std::vector<float> y(64, 0.0f);
  launch_or_fail(launch_error(shared_slot_kernel, dim3(1), dim3(64), y.data(), false));
}
TEST_CASE("child: shared slot written by one", "[.tsan_child]") {
  std::vector<float> y(64, -1.0f);
  launch_or_fail(launch_error(shared_slot_kernel, dim3(1), dim3(64), y.data(), true));
  CHECK(y[63] == 0.0f);
}

#if defined(__SANITIZE_THREAD__)

void expect_race(const std::string& child, const std::string& kernel) {
  const ich::test::ChildResult r = ich::test::run_test_in_child(child);
  INFO("child '" << child << "' exited " << r.exit_code << " and printed:\n" << r.output);
  CHECK_THAT(r.output, Catch::Contains("WARNING: ThreadSanitizer: data race"));
  CHECK_THAT(r.output, Catch::Contains(kernel));
  CHECK(r.exit_code != 0);
}

void expect_clean(const std::string& child) {
  const ich::test::ChildResult r = ich::test::run_test_in_child(child);
  INFO("child '" << child << "' exited " << r.exit_code << " and printed:\n" << r.output);
  CHECK_THAT(r.output, !Catch::Contains("ThreadSanitizer"));
  CHECK(r.exit_code == 0);
}

TEST_CASE("tsan: a non-atomic scatter-add is reported, the atomic one is clean", "[tsan]") {
  expect_race("child: racy scatter-add", "racy_scatter_add_kernel");
  expect_clean("child: atomic scatter-add");
}

TEST_CASE("tsan: a missing __syncthreads is reported, the barrier makes it clean", "[tsan]") {
  expect_race("child: missing barrier", "shared_shift_kernel");
  expect_clean("child: with barrier");
}

TEST_CASE("tsan: threads writing one shared slot are reported", "[tsan]") {
  expect_race("child: shared slot written by all", "shared_slot_kernel");
  expect_clean("child: shared slot written by one");
}

#endif  // __SANITIZE_THREAD__

// ---- cuda-core's kernels are race-free (tiny shapes, several blocks)

using ich::test::parity::ParityCase;
using ich::test::parity::ParityRun;
using ich::test::parity::values;

TEST_CASE("tsan: cuda-core's reductions and accumulating kernels are race-free", "[tsan]") {
  omp_set_num_threads(1);
  const int64_t n = 1500;  // 6 blocks of 256 threads; 2 in the small-grid target
  std::vector<ParityCase> cases;
  cases.push_back(
      {"sum", 1e-10, [=](ParityRun& r) { r.backend.sum(r.in(values(n, 1)), n, r.out(1)); }});
  cases.push_back({"soft dice", 1e-10, [=](ParityRun& r) {
                     const float* p = r.in(values(n, 2, 0.05f, 0.95f));
                     const float* t = r.in(values(n, 3, 0.0f, 1.0f));
                     float* stats = r.out(2);
                     r.backend.soft_dice_forward(p, t, n, 1.0f, stats, r.out(1));
                     r.backend.soft_dice_backward(p, t, n, 1.0f, stats,
                                                  r.in(std::vector<float>{1.0f}), r.out(n));
                   }});
  cases.push_back({"bce", 1e-10, [=](ParityRun& r) {
                     const float* p = r.in(values(n, 4, 0.05f, 0.95f));
                     const float* t = r.in(values(n, 5, 0.0f, 1.0f));
                     r.backend.bce_forward(p, t, n, r.out(1));
                     r.backend.bce_backward(p, t, n, r.in(std::vector<float>{1.0f}), r.out(n));
                   }});
  cases.push_back({"axpy", 1e-13, [=](ParityRun& r) {
                     r.backend.axpy(0.5f, r.in(values(n, 6)), r.inout(values(n, 7)), n);
                   }});
  cases.push_back({"gemm 70x66x40, both transposed", 1e-10, [](ParityRun& r) {
                     r.backend.gemm(true, true, 70, 66, 40, 1.0f, r.in(values(40 * 70, 8)), 70,
                                    r.in(values(66 * 40, 9)), 40, 0.5f,
                                    r.inout(values(70 * 66, 10)), 66);
                   }});
  cases.push_back({"adam", 1e-12, [=](ParityRun& r) {
                     ich::AdamParams p;
                     p.step = 3;
                     r.backend.adam_step(r.inout(values(n, 11)), r.in(values(n, 12)),
                                         r.inout(values(n, 13)), r.inout(values(n, 14, 0.0f, 1.0f)),
                                         n, p);
                   }});
  ich::test::parity::check_cases(cases);
}

TEST_CASE("tsan: cuda-core's elementwise kernels are race-free", "[tsan]") {
  omp_set_num_threads(1);
  const int64_t n = 700;
  std::vector<ParityCase> cases;
  cases.push_back({"window", 0.0, [=](ParityRun& r) {
                     r.backend.ct_window(r.in(values(n, 1, -500.0f, 500.0f)), r.out(n), n, 40.0f,
                                         120.0f);
                   }});
  cases.push_back(
      {"uniform", 1e-13, [=](ParityRun& r) { r.backend.uniform(r.out(n), n, 5, 9, 0.0f, 1.0f); }});
  cases.push_back({"relu, sigmoid", 1e-10, [=](ParityRun& r) {
                     const float* x = r.in(values(n, 2));
                     r.backend.relu_backward(r.in(values(n, 3)), x, r.out(n), n);
                     r.backend.sigmoid_forward(x, r.out(n), n);
                   }});
  cases.push_back({"dropout2d", 0.0, [](ParityRun& r) {
                     float* mask = r.out(2 * 5);
                     r.backend.dropout2d_forward(r.in(values(2 * 5 * 70, 4)), r.out(700), mask, 2,
                                                 5, 70, 0.5f, 3, 0);
                   }});
  cases.push_back({"concat", 0.0, [](ParityRun& r) {
                     r.backend.concat_channels(r.in(values(2 * 3 * 50, 5)),
                                               r.in(values(2 * 4 * 50, 6)), r.out(2 * 7 * 50), 2, 3,
                                               4, 50);
                   }});
  ich::test::parity::check_cases(cases);
}

}  // namespace
