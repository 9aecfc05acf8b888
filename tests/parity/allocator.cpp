// The caching device allocator (kernels/cuda/allocator.h): size classes, reuse on the
// same stream only, statistics, the out-of-memory retry, the switch that turns caching
// off, and no growth or leak over a training-like loop on the cuda-emu backend.
#ifdef ICH_HAVE_CUDA_EMU

#include "kernels/cuda/allocator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

#include "common/size_class_checks.h"
#include "core/error.h"
#include "kernels/cuda/cuda_options.h"

namespace {

using ich::cuda_emu::CachingAllocator;
using ich::cuda_emu::RawDeviceMemory;

// A fake device with a byte budget, counting its calls.
struct FakeDevice {
  size_t capacity = size_t(1) << 30;
  size_t used = 0;
  std::map<void*, size_t> live;

  RawDeviceMemory raw() {
    RawDeviceMemory r;
    r.allocate = [this](size_t bytes) -> void* {
      if (used + bytes > capacity) return nullptr;
      void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
      live[p] = bytes;
      used += bytes;
      return p;
    };
    r.release = [this](void* p) {
      used -= live.at(p);
      live.erase(p);
      std::free(p);
    };
    return r;
  }
};

const void* const kStreamA = reinterpret_cast<const void*>(0x1);
const void* const kStreamB = reinterpret_cast<const void*>(0x2);

TEST_CASE("allocator: size classes are 512-byte granules, then quarter powers of two", "[parity]") {
  ich::test::check_size_classes(CachingAllocator::size_class, 512,
                                {{0, 512}, {1, 512}, {512, 512}, {513, 1024}},
                                {1, 1000, 123457, 5000001, size_t(1) << 31});
}

TEST_CASE("allocator: a freed block is reused by the next request of its class on its stream",
          "[parity]") {
  FakeDevice device;
  CachingAllocator alloc(device.raw(), true);
  void* a = alloc.allocate(1000, kStreamA);
  alloc.deallocate(a);
  CHECK(alloc.allocate(900, kStreamA) == a);  // same class (1024): reused
  void* other_stream = alloc.allocate(1000, kStreamB);
  CHECK(other_stream != a);  // never across streams
  void* bigger = alloc.allocate(5000, kStreamA);
  CHECK(bigger != a);
  const ich::MemoryStats s = alloc.stats();
  CHECK(s.device_alloc_calls == 3);
  CHECK(s.cache_hits == 1);
  CHECK(s.bytes_in_use == 1024 + 1024 + 5120);
  CHECK(s.peak_bytes_in_use == 1024 + 1024 + 5120);
  CHECK(alloc.blocks_in_use() == 3);
  alloc.deallocate(a);
  alloc.deallocate(other_stream);
  alloc.deallocate(bigger);
  CHECK(alloc.stats().bytes_in_use == 0);
  CHECK(alloc.stats().bytes_reserved == 1024 + 1024 + 5120);  // cached, not returned
  alloc.release_cached();
  CHECK(alloc.stats().bytes_reserved == 0);
  CHECK(alloc.stats().device_free_calls == 3);
  CHECK(device.live.empty());
}

TEST_CASE("allocator: with caching off every request is a device call", "[parity]") {
  FakeDevice device;
  CachingAllocator alloc(device.raw(), false);
  for (int i = 0; i < 5; ++i) alloc.deallocate(alloc.allocate(4096, kStreamA));
  const ich::MemoryStats s = alloc.stats();
  CHECK(s.device_alloc_calls == 5);
  CHECK(s.device_free_calls == 5);
  CHECK(s.cache_hits == 0);
  CHECK(s.bytes_reserved == 0);
  CHECK(s.peak_bytes_in_use == 4096);
}

TEST_CASE("allocator: out of memory empties the cache and retries, then fails clearly",
          "[parity]") {
  FakeDevice device;
  device.capacity = 8192;
  CachingAllocator alloc(device.raw(), true);
  alloc.deallocate(alloc.allocate(6000, kStreamA));  // 6144 bytes now cached
  void* p = alloc.allocate(4000, kStreamA);          // does not fit beside the cached block
  CHECK(p != nullptr);
  CHECK(alloc.stats().bytes_reserved == 4096);
  CHECK_THROWS_WITH(alloc.allocate(8000, kStreamA), Catch::Contains("out of device memory"));
  alloc.deallocate(p);
}

TEST_CASE("allocator: freeing a pointer it did not hand out throws", "[parity]") {
  FakeDevice device;
  CachingAllocator alloc(device.raw(), true);
  void* p = alloc.allocate(100, kStreamA);
  alloc.deallocate(p);
  CHECK_THROWS_WITH(alloc.deallocate(p), Catch::Contains("already freed"));
  int on_stack = 0;
  CHECK_THROWS_AS(alloc.deallocate(&on_stack), ich::Error);
  alloc.deallocate(nullptr);  // ignored, as free(nullptr)
}

// A training-like loop: per step the same activations are allocated and freed. After the
// first step every allocation is served from the cache, and nothing is left in use.
TEST_CASE("allocator: a training loop on cuda-emu reaches a steady state and leaks nothing",
          "[parity]") {
  for (bool caching : {true, false}) {
    ich::CudaBackendOptions options;
    options.caching_allocator = caching;
    std::unique_ptr<ich::Backend> backend = ich::make_cuda_emu_backend_with(options);
    ich::Backend& be = *backend;
    const ich::MemoryStats start = be.memory_stats();
    const int m = 16, k = 24, n = 40;
    float* w = static_cast<float*>(be.alloc(sizeof(float) * k * n));
    float* mw = static_cast<float*>(be.alloc(sizeof(float) * k * n));
    float* vw = static_cast<float*>(be.alloc(sizeof(float) * k * n));
    be.uniform(w, k * n, 7, 0, -0.1f, 0.1f);
    be.fill(mw, k * n, 0.0f);
    be.fill(vw, k * n, 0.0f);
    size_t calls_after_first_step = 0;
    float first_loss = 0.0f, last_loss = 0.0f;
    for (int step = 1; step <= 6; ++step) {
      auto buffer = [&](size_t floats) {
        return static_cast<float*>(be.alloc(sizeof(float) * floats));
      };
      float* x = buffer(m * k);
      float* target = buffer(m * n);
      float* logits = buffer(m * n);
      float* prob = buffer(m * n);
      float* loss = buffer(1);
      float* one = buffer(1);
      float* dprob = buffer(m * n);
      float* dlogits = buffer(m * n);
      float* dw = buffer(k * n);
      be.uniform(x, m * k, 11, 0, -1.0f, 1.0f);
      be.uniform(target, m * n, 12, 0, 0.0f, 1.0f);
      be.fill(one, 1, 1.0f);
      be.gemm(false, false, m, n, k, 1.0f, x, k, w, n, 0.0f, logits, n);
      be.sigmoid_forward(logits, prob, m * n);
      be.bce_forward(prob, target, m * n, loss);
      be.bce_backward(prob, target, m * n, one, dprob);
      be.sigmoid_backward(dprob, prob, dlogits, m * n);
      be.gemm(true, false, k, n, m, 1.0f, x, k, dlogits, n, 0.0f, dw, n);
      ich::AdamParams adam;
      adam.lr = 0.05f;
      adam.step = step;
      be.adam_step(w, dw, mw, vw, k * n, adam);
      float host_loss = 0.0f;
      be.copy_to_host(&host_loss, loss, sizeof(float));
      if (step == 1) first_loss = host_loss;
      last_loss = host_loss;
      for (float* p : {x, target, logits, prob, loss, one, dprob, dlogits, dw}) be.free(p);
      if (step == 1) calls_after_first_step = be.memory_stats().device_alloc_calls;
    }
    be.free(w);
    be.free(mw);
    be.free(vw);
    const ich::MemoryStats end = be.memory_stats();
    INFO("caching " << caching);
    CHECK(std::isfinite(last_loss));
    CHECK(last_loss < first_loss);  // the loop really trained: the same inputs fit better
    CHECK(end.bytes_in_use == start.bytes_in_use);
    CHECK(end.peak_bytes_in_use > start.bytes_in_use);
    if (caching) {
      CHECK(end.device_alloc_calls == calls_after_first_step);  // steady state: all from cache
      CHECK(end.cache_hits >= 5 * 9);
    } else {
      CHECK(end.device_alloc_calls == start.device_alloc_calls + 3 + 6 * 9);
      CHECK(end.device_free_calls == end.device_alloc_calls - 1);  // only the scratch is held
    }
  }
}

}  // namespace

#endif  // ICH_HAVE_CUDA_EMU
