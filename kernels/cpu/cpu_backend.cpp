// The CPU backend's factory and memory: 64-byte aligned host allocations, plain memcpy
// copies, and a cache of freed blocks.
//
// Why a cache on the host: a training step frees and reallocates the same tensor sizes
// every iteration. glibc serves large blocks by mmap and returns them with munmap, so each
// step would touch fresh pages again (about 10 us per 4 KiB page in our VMs: hundreds of ms
// per U-Net step). Freed blocks therefore go to a free list per size class (size_class())
// and are handed out again to the next request of that class; the steady-state step asks
// the C library for nothing. ICH_CPU_CACHING=0 (or CpuBackend(false)) turns the cache off
// to measure what it buys; the statistics are kept either way. When the C library has no
// memory left, every cached block is released and the request is tried once more.
// Under AddressSanitizer a cached block is poisoned while it sits in a free list, so a use
// after free is still reported.
#include "core/ceil_div.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/conv_algo.h"

#include <cstdlib>
#include <cstring>

#include "kernels/backend_factories.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ICH_CPU_CACHE_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ICH_CPU_CACHE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ICH_CPU_CACHE_POISON(p, n) ((void)(p), (void)(n))
#define ICH_CPU_CACHE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace ich {

namespace {

constexpr size_t kAlignment = 64;
// Larger requests are a size computed from garbage (a negative int64 cast to size_t, an
// overflowed product), not a tensor: refuse them with the number instead of asking the OS.
constexpr size_t kMaxAllocationBytes = size_t(1) << 42;  // 4 TiB

bool caching_from_environment() {
  const char* v = std::getenv("ICH_CPU_CACHING");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

CpuBackend::CpuBackend() : CpuBackend(caching_from_environment()) {}

CpuBackend::CpuBackend(bool caching) : caching_(caching) {
  cpu::use_single_threaded_blas();
  cpu::conv_algo();  // a bad ICH_CONV_ALGO fails here, when the backend is created
}

CpuBackend::~CpuBackend() {
  // Whatever the caller leaked is returned here so that the backend owns no memory after it.
  for (auto& entry : allocation_bytes_) std::free(entry.first);
  release_cached_locked();
}

size_t CpuBackend::size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes <= 4096) return round_up(bytes, kAlignment);
  if (bytes <= (size_t(1) << 20)) return round_up(bytes, 512);
  size_t power = size_t(1) << 20;
  while (power * 2 <= bytes) power *= 2;
  return round_up(bytes, power / 4);
}

void* CpuBackend::alloc(size_t bytes) {
  ICH_PROFILE_SCOPE("alloc");
  ICH_CHECK(bytes <= kMaxAllocationBytes,
            "cpu alloc of " << bytes << " bytes is larger than the " << kMaxAllocationBytes
                            << "-byte limit: the size is probably computed from a negative or "
                               "overflowed shape");
  // A zero-byte request still gets a distinct, freeable pointer, as malloc(0) may not.
  const size_t size =
      caching_ ? size_class(bytes)
               : (bytes == 0 ? kAlignment : round_up(bytes, kAlignment));
  std::lock_guard<std::mutex> lock(memory_mutex_);
  void* ptr = nullptr;
  if (caching_) {
    auto it = free_lists_.find(size);
    if (it != free_lists_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      ICH_CPU_CACHE_UNPOISON(ptr, size);
      ++stats_.cache_hits;
    }
  }
  if (ptr == nullptr) {
    ptr = std::aligned_alloc(kAlignment, size);
    if (ptr == nullptr && stats_.bytes_reserved > stats_.bytes_in_use) {
      release_cached_locked();
      ptr = std::aligned_alloc(kAlignment, size);
    }
    ICH_CHECK(ptr != nullptr, "cpu alloc of " << bytes << " bytes failed: out of host memory ("
                                              << stats_.bytes_in_use << " bytes already in use)");
    ++stats_.device_alloc_calls;
    stats_.bytes_reserved += size;
  }
  allocation_bytes_.emplace(ptr, size);
  stats_.bytes_in_use += size;
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return ptr;
}

void CpuBackend::free(void* ptr) {
  ICH_PROFILE_SCOPE("free");
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(memory_mutex_);
  auto it = allocation_bytes_.find(ptr);
  ICH_CHECK(it != allocation_bytes_.end(),
            "cpu free of " << ptr << ", which this backend did not allocate (or freed twice)");
  const size_t size = it->second;
  stats_.bytes_in_use -= size;
  allocation_bytes_.erase(it);
  if (caching_) {
    ICH_CPU_CACHE_POISON(ptr, size);
    free_lists_[size].push_back(ptr);
    return;
  }
  stats_.bytes_reserved -= size;
  ++stats_.device_free_calls;
  std::free(ptr);
}

void CpuBackend::release_cached() {
  std::lock_guard<std::mutex> lock(memory_mutex_);
  release_cached_locked();
}

void CpuBackend::release_cached_locked() {
  for (auto& [size, blocks] : free_lists_) {
    for (void* p : blocks) {
      ICH_CPU_CACHE_UNPOISON(p, size);
      std::free(p);
      stats_.bytes_reserved -= size;
      ++stats_.device_free_calls;
    }
  }
  free_lists_.clear();
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  checks::copy("copy_from_host", dst, src, bytes);
  copy(dst, src, bytes);
}

void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  checks::copy("copy_to_host", dst, src, bytes);
  copy(dst, src, bytes);
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  ICH_PROFILE_SCOPE("copy");
  checks::copy("copy", dst, src, bytes);
  if (bytes == 0) return;
  if (dst != src) std::memmove(dst, src, bytes);
}

MemoryStats CpuBackend::memory_stats() const {
  std::lock_guard<std::mutex> lock(memory_mutex_);
  return stats_;
}

}  // namespace ich
