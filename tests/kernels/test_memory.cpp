// The CPU backend's memory: alignment, statistics, refusal of absurd sizes and foreign frees.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/size_class_checks.h"
#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

using ich::CpuBackend;

TEST_CASE("memory: allocations are 64-byte aligned and counted", "[memory]") {
  CpuBackend be(/*caching=*/false);
  void* a = be.alloc(100);  // rounds up to 128
  void* b = be.alloc(64);
  void* z = be.alloc(0);  // a distinct pointer, 64 bytes
  REQUIRE(a != nullptr);
  REQUIRE(z != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  CHECK(reinterpret_cast<uintptr_t>(b) % 64 == 0);
  CHECK(reinterpret_cast<uintptr_t>(z) % 64 == 0);
  ich::MemoryStats s = be.memory_stats();
  CHECK(s.bytes_in_use == 128 + 64 + 64);
  CHECK(s.peak_bytes_in_use == 256);
  CHECK(s.device_alloc_calls == 3);
  be.free(a);
  be.free(nullptr);
  s = be.memory_stats();
  CHECK(s.bytes_in_use == 128);
  CHECK(s.peak_bytes_in_use == 256);
  CHECK(s.device_free_calls == 1);
  be.free(b);
  be.free(z);
  CHECK(be.memory_stats().bytes_in_use == 0);
}

TEST_CASE("memory: absurd sizes and foreign pointers throw ich::Error", "[memory]") {
  for (bool caching : {false, true}) {
    INFO("caching " << caching);
    CpuBackend be(caching);
    CHECK_THROWS_AS(be.alloc(static_cast<size_t>(-1)), ich::Error);
    CHECK_THROWS_AS(be.alloc(static_cast<size_t>(int64_t(-4) * 1000)), ich::Error);
    int on_stack = 0;
    CHECK_THROWS_AS(be.free(&on_stack), ich::Error);
    void* p = be.alloc(16);
    be.free(p);
    CHECK_THROWS_AS(be.free(p), ich::Error);  // double free, also of a cached block
    CHECK(be.memory_stats().bytes_in_use == 0);
  }
}

TEST_CASE("memory: size classes bound the slack", "[memory]") {
  ich::test::check_size_classes(CpuBackend::size_class, 64,
                                {{0, 64}, {100, 128}, {4096, 4096}, {4097, 4608}},
                                {1, 5000, 123457, 5000001, size_t(1) << 31});
}

// A step-like loop: the same sizes are allocated and freed each iteration. With caching the
// second iteration on asks the C library for nothing and gets the same blocks back.
TEST_CASE("memory: the cache serves a repeated step without new allocations", "[memory]") {
  CpuBackend be(/*caching=*/true);
  CHECK(be.caching());
  const std::vector<size_t> sizes = {100, 4 << 20, 3000000, 100, 64};
  std::vector<void*> first;
  size_t calls_after_first = 0;
  for (int step = 0; step < 3; ++step) {
    std::vector<void*> ptrs;
    for (size_t b : sizes) {
      void* p = be.alloc(b);
      std::memset(p, 0x5a, b);  // the whole requested size is usable
      CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
      ptrs.push_back(p);
    }
    for (void* p : ptrs) be.free(p);
    if (step == 0) {
      calls_after_first = be.memory_stats().device_alloc_calls;
      first = ptrs;
    }
  }
  const ich::MemoryStats s = be.memory_stats();
  CHECK(calls_after_first == sizes.size());
  CHECK(s.device_alloc_calls == calls_after_first);
  CHECK(s.cache_hits == 2 * sizes.size());
  CHECK(s.bytes_in_use == 0);
  CHECK(s.bytes_reserved > 0);
  CHECK(s.device_free_calls == 0);
  be.release_cached();
  CHECK(be.memory_stats().bytes_reserved == 0);
  CHECK(be.memory_stats().device_free_calls == sizes.size());
  // After the release a new request is a new C-library allocation again.
  void* p = be.alloc(100);
  CHECK(be.memory_stats().device_alloc_calls == sizes.size() + 1);
  be.free(p);
}

TEST_CASE("memory: ICH_CPU_CACHING=0 turns the cache off", "[memory]") {
  setenv("ICH_CPU_CACHING", "0", 1);
  const bool off = !CpuBackend().caching();
  unsetenv("ICH_CPU_CACHING");
  CHECK(off);
  CHECK(CpuBackend().caching());
}

TEST_CASE("memory: copies move the bytes", "[memory]") {
  CpuBackend be;
  std::vector<float> host = {1.f, 2.f, 3.f, 4.f, 5.f};
  float* d1 = static_cast<float*>(be.alloc(host.size() * sizeof(float)));
  float* d2 = static_cast<float*>(be.alloc(host.size() * sizeof(float)));
  be.copy_from_host(d1, host.data(), host.size() * sizeof(float));
  be.copy(d2, d1, host.size() * sizeof(float));
  std::vector<float> back(host.size(), 0.f);
  be.copy_to_host(back.data(), d2, back.size() * sizeof(float));
  be.synchronize();
  CHECK(back == host);
  be.copy(d2, nullptr, 0);  // zero bytes: nothing to do, no pointer needed
  CHECK_THROWS_AS(be.copy(d2, nullptr, 4), ich::Error);
  be.free(d1);
  be.free(d2);
}

TEST_CASE("memory: the registry's cpu backend is the CpuBackend", "[memory]") {
  ich::Backend& be = ich::backend_for(ich::Device::cpu());
  CHECK(std::strcmp(be.name(), "cpu") == 0);
  CHECK(be.device() == ich::Device::cpu());
  CHECK(dynamic_cast<CpuBackend*>(&be) != nullptr);
}
