// Under AddressSanitizer (the asan build: scripts/build.sh asan), an out-of-bounds global
// access inside a cuda-emu kernel is reported: device memory is host heap memory, and the
// caching allocator keeps the slack of a size class and every cached block poisoned. The
// faulty kernels run in child processes (ASan aborts the process it reports in); the
// parent asserts on the report. In other builds the test says it is skipped.
#ifdef ICH_HAVE_CUDA_EMU

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/runtime.h"
#include "parity/child_process.h"

namespace {

// y[i] = x[i + 1] for i < n: reads one element past the end of x (n elements).
__global__ void read_past_end_kernel(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i + 1];
}

void run_read_past_end(float* x, float* y, int n) {
  ich::emu::launch(read_past_end_kernel, dim3(2), dim3(64), 0, nullptr, x, y, n);
  (void)cudaGetLastError();
}

TEST_CASE("child: kernel reads past a cudaMalloc buffer", "[.asan_child]") {
  const int n = 100;
  float *x = nullptr, *y = nullptr;
  REQUIRE(cudaMalloc(&x, n * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMalloc(&y, n * sizeof(float)) == cudaSuccess);
  run_read_past_end(x, y, n);
  cudaFree(x);
  cudaFree(y);
}

// 100 floats live in a 512-byte size class: the read lands in the block's slack.
TEST_CASE("child: kernel reads past a buffer of the caching allocator", "[.asan_child]") {
  ich::Backend& be = ich::backend_for(ich::Device::cuda_emu());
  const int n = 100;
  float* x = static_cast<float*>(be.alloc(n * sizeof(float)));
  float* y = static_cast<float*>(be.alloc(n * sizeof(float)));
  be.fill(x, n, 1.0f);
  run_read_past_end(x, y, n);
  be.free(x);
  be.free(y);
}

// The same kernel on a buffer with one element to spare is fine (the control).
TEST_CASE("child: kernel reads within its buffer", "[.asan_child]") {
  ich::Backend& be = ich::backend_for(ich::Device::cuda_emu());
  const int n = 100;
  float* x = static_cast<float*>(be.alloc((n + 1) * sizeof(float)));
  float* y = static_cast<float*>(be.alloc(n * sizeof(float)));
  be.fill(x, n + 1, 2.0f);
  run_read_past_end(x, y, n);
  float last = 0.0f;
  be.copy_to_host(&last, y + n - 1, sizeof(float));
  CHECK(last == 2.0f);
  be.free(x);
  be.free(y);
}

TEST_CASE("asan: an out-of-bounds global read in a cuda-emu kernel is reported", "[parity]") {
#if defined(__SANITIZE_ADDRESS__)
  for (const char* child : {"child: kernel reads past a cudaMalloc buffer",
                            "child: kernel reads past a buffer of the caching allocator"}) {
    const ich::test::ChildResult r = ich::test::run_test_in_child(child);
    INFO("child '" << child << "' exited " << r.exit_code << " and printed:\n" << r.output);
    CHECK_THAT(r.output, Catch::Contains("ERROR: AddressSanitizer"));
    CHECK_THAT(r.output, Catch::Contains("read_past_end_kernel"));
    CHECK(r.exit_code != 0);
  }
  const ich::test::ChildResult ok =
      ich::test::run_test_in_child("child: kernel reads within its buffer");
  INFO("control child printed:\n" << ok.output);
  CHECK_THAT(ok.output, !Catch::Contains("AddressSanitizer"));
  CHECK(ok.exit_code == 0);
#else
  WARN(
      "skipped: this build has no AddressSanitizer; the check runs in the asan build "
      "(scripts/build.sh asan)");
#endif
}

}  // namespace

#endif  // ICH_HAVE_CUDA_EMU
