// The caching device allocator: see allocator.h for the policy.
#include "core/ceil_div.h"
#include "kernels/cuda/allocator.h"

#include <cstdio>

#include "core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ICH_ALLOCATOR_ASAN 1
#endif

namespace ich::ICH_CUDA_NS {

namespace {
constexpr size_t kSmallLimit = size_t(1) << 20;  // below: 512-byte granules
constexpr size_t kSmallGranule = 512;
}  // namespace

size_t CachingAllocator::size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes <= kSmallLimit) return round_up(bytes, kSmallGranule);
  // Quarters of the power of two at or below bytes: 2^k, 1.25 2^k, 1.5 2^k, 1.75 2^k.
  size_t power = kSmallLimit;
  while (power * 2 <= bytes) power *= 2;
  const size_t quarter = power / 4;
  return round_up(bytes, quarter);
}

CachingAllocator::CachingAllocator(RawDeviceMemory raw, bool caching_enabled)
    : raw_(std::move(raw)), caching_enabled_(caching_enabled) {
  ICH_CHECK(raw_.allocate && raw_.release, "CachingAllocator needs device allocate and release");
}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!in_use_.empty())
    std::fprintf(stderr,
                 "ichseg: %zu device block(s) (%zu bytes) were never freed before their backend "
                 "was destroyed\n",
                 in_use_.size(), stats_.bytes_in_use);
  release_cached_locked();
}

void CachingAllocator::poison(void* ptr, size_t bytes) const {
#if defined(ICH_ALLOCATOR_ASAN)
  if (raw_.host_addressable && bytes > 0) ASAN_POISON_MEMORY_REGION(ptr, bytes);
#else
  (void)ptr;
  (void)bytes;
#endif
}

void CachingAllocator::unpoison(void* ptr, size_t bytes) const {
#if defined(ICH_ALLOCATOR_ASAN)
  if (raw_.host_addressable && bytes > 0) ASAN_UNPOISON_MEMORY_REGION(ptr, bytes);
#else
  (void)ptr;
  (void)bytes;
#endif
}

void* CachingAllocator::device_allocate(size_t size) {
  void* ptr = raw_.allocate(size);
  if (ptr == nullptr && !free_lists_.empty()) {
    release_cached_locked();  // out of memory: give the cache back and try once more
    ptr = raw_.allocate(size);
  }
  ICH_CHECK(ptr != nullptr, "out of device memory allocating "
                                << size << " bytes (" << stats_.bytes_in_use << " bytes in use, "
                                << stats_.bytes_reserved
                                << " reserved); use a smaller batch or patch size");
  ++stats_.device_alloc_calls;
  stats_.bytes_reserved += size;
  return ptr;
}

void* CachingAllocator::allocate(size_t bytes, StreamKey stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t size = caching_enabled_ ? size_class(bytes) : (bytes == 0 ? 1 : bytes);
  void* ptr = nullptr;
  if (caching_enabled_) {
    auto it = free_lists_.find({stream, size});
    if (it != free_lists_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      if (it->second.empty()) free_lists_.erase(it);
      ++stats_.cache_hits;
    }
  }
  if (ptr == nullptr) ptr = device_allocate(size);
  unpoison(ptr, bytes);
  poison(static_cast<char*>(ptr) + bytes, size - bytes);  // the slack stays unusable
  in_use_[ptr] = Block{size, bytes, stream};
  stats_.bytes_in_use += size;
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  ICH_CHECK(it != in_use_.end(),
            "free of " << ptr << ", which this backend did not allocate or has already freed");
  const Block block = it->second;
  in_use_.erase(it);
  stats_.bytes_in_use -= block.size;
  if (caching_enabled_) {
    poison(ptr, block.size);  // a use after free is reported while the block is cached
    free_lists_[{block.stream, block.size}].push_back(ptr);
  } else {
    unpoison(ptr, block.size);
    raw_.release(ptr);
    ++stats_.device_free_calls;
    stats_.bytes_reserved -= block.size;
  }
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  for (auto& [key, blocks] : free_lists_) {
    for (void* ptr : blocks) {
      unpoison(ptr, key.second);
      raw_.release(ptr);
      ++stats_.device_free_calls;
      stats_.bytes_reserved -= key.second;
    }
  }
  free_lists_.clear();
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

size_t CachingAllocator::blocks_in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_.size();
}

}  // namespace ich::ICH_CUDA_NS
