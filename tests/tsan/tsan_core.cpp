// cuda-emu under ThreadSanitizer (the tsan build: scripts/build.sh tsan; label tsan).
//
// Every CUDA thread is a TSan fiber switched without implied synchronisation, so only
// __syncthreads(), atomics and the launch boundaries order memory between threads.
//   1. The detector works: deliberately racy kernels (a non-atomic scatter-add, a missing
//      __syncthreads, two threads writing one shared slot) run in a child process and
//      must be reported there as data races in that kernel; their corrected versions run
//      the same way and must not be.
//   2. the real kernels are clean: tsan_table.cpp runs the op table's race cases.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/emu_kernels.h"
#include "kernels/cuda/runtime.h"
#include "parity/child_process.h"

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

using ich::test::launch_error;
using ich::test::shift_through_shared_kernel;

// ---- the child processes (hidden: run only by name)

TEST_CASE("child: racy scatter-add", "[.tsan_child]") {
  std::vector<float> x(256, 1.0f), out(64, 0.0f);
  launch_or_fail(
      launch_error(racy_scatter_add_kernel, dim3(2), dim3(128), 0, x.data(), out.data(), 256));
}
TEST_CASE("child: atomic scatter-add", "[.tsan_child]") {
  std::vector<float> x(256, 1.0f), out(64, 0.0f);
  launch_or_fail(
      launch_error(atomic_scatter_add_kernel, dim3(2), dim3(128), 0, x.data(), out.data(), 256));
  for (float v : out) CHECK(v == 4.0f);
}
TEST_CASE("child: missing barrier", "[.tsan_child]") {
  std::vector<float> x(64, 1.0f), y(64, 0.0f);
  launch_or_fail(
      launch_error(shift_through_shared_kernel, dim3(1), dim3(64), 0, x.data(), y.data(), false));
}
TEST_CASE("child: with barrier", "[.tsan_child]") {
  std::vector<float> x(64, 1.0f), y(64, 0.0f);
  launch_or_fail(
      launch_error(shift_through_shared_kernel, dim3(1), dim3(64), 0, x.data(), y.data(), true));
  CHECK(y[0] == 1.0f);
}
TEST_CASE("child: shared slot written by all", "[.tsan_child]") {
  std::vector<float> y(64, 0.0f);
  launch_or_fail(launch_error(shared_slot_kernel, dim3(1), dim3(64), 0, y.data(), false));
}
TEST_CASE("child: shared slot written by one", "[.tsan_child]") {
  std::vector<float> y(64, -1.0f);
  launch_or_fail(launch_error(shared_slot_kernel, dim3(1), dim3(64), 0, y.data(), true));
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
  expect_race("child: missing barrier", "shift_through_shared_kernel");
  expect_clean("child: with barrier");
}

TEST_CASE("tsan: threads writing one shared slot are reported", "[tsan]") {
  expect_race("child: shared slot written by all", "shared_slot_kernel");
  expect_clean("child: shared slot written by one");
}

#endif  // __SANITIZE_THREAD__

}  // namespace
