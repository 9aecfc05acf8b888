// The CPU backend's factory and memory: 64-byte aligned host allocations, plain memcpy
// copies, and statistics of what is handed out (there is no cache: reserved == in use).
#include "kernels/cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>

#include "kernels/backend_factories.h"

namespace ich {

namespace {

constexpr size_t kAlignment = 64;
// Larger requests are a size computed from garbage (a negative int64 cast to size_t, an
// overflowed product), not a tensor: refuse them with the number instead of asking the OS.
constexpr size_t kMaxAllocationBytes = size_t(1) << 42;  // 4 TiB

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

CpuBackend::~CpuBackend() {
  // Whatever the caller leaked is returned here so that the backend owns no memory after it.
  for (auto& entry : allocation_bytes_) std::free(entry.first);
}

void* CpuBackend::alloc(size_t bytes) {
  ICH_PROFILE_SCOPE("alloc");
  ICH_CHECK(bytes <= kMaxAllocationBytes,
            "cpu alloc of " << bytes << " bytes is larger than the " << kMaxAllocationBytes
                            << "-byte limit: the size is probably computed from a negative or "
                               "overflowed shape");
  // A zero-byte request still gets a distinct, freeable pointer, as malloc(0) may not.
  const size_t rounded =
      bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* ptr = std::aligned_alloc(kAlignment, rounded);
  std::lock_guard<std::mutex> lock(memory_mutex_);
  ICH_CHECK(ptr != nullptr, "cpu alloc of " << bytes << " bytes failed: out of host memory ("
                                            << stats_.bytes_in_use << " bytes already in use)");
  allocation_bytes_.emplace(ptr, rounded);
  stats_.bytes_in_use += rounded;
  stats_.bytes_reserved += rounded;
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  ++stats_.device_alloc_calls;
  return ptr;
}

void CpuBackend::free(void* ptr) {
  ICH_PROFILE_SCOPE("free");
  if (ptr == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(memory_mutex_);
    auto it = allocation_bytes_.find(ptr);
    ICH_CHECK(it != allocation_bytes_.end(),
              "cpu free of " << ptr << ", which this backend did not allocate (or freed twice)");
    stats_.bytes_in_use -= it->second;
    stats_.bytes_reserved -= it->second;
    ++stats_.device_free_calls;
    allocation_bytes_.erase(it);
  }
  std::free(ptr);
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
