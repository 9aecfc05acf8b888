// The caching device allocator (the idea of cnmem and PyTorch's CUDACachingAllocator).
//
// cudaMalloc and cudaFree are slow and synchronise the device, and a training step frees
// and reallocates the same sizes every iteration. So freed blocks are kept in free lists,
// one per (stream, size class), and handed out again to the next request of that class on
// the same stream. Reuse is stream-ordered: a block freed on stream S is only reused by
// work issued later on S, which runs after every earlier use of it, so no event or
// synchronisation is needed. Blocks never migrate between streams.
//
// Size classes: requests are rounded up to 512 bytes below 1 MiB, and to a quarter of
// their power of two above (1 MiB, 1.25 MiB, 1.5 MiB, 1.75 MiB, 2 MiB, 2.5 MiB, ...), so
// at most 25% of a large block is slack.
//
// When the device is out of memory, every cached block is released and the request is
// tried once more before failing. With caching off, every allocate/deallocate is a
// device call; the statistics are kept either way, so the two can be compared.
//
// Under AddressSanitizer with host memory (cuda-emu), a cached block is poisoned while it
// sits in a free list and the slack past the requested size stays poisoned while it is
// handed out, so overruns into the slack and uses after free are still reported.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/flavour.h"

namespace ich::ICH_CUDA_NS {

// The device calls underneath: allocate returns nullptr when out of memory.
struct RawDeviceMemory {
  std::function<void*(size_t bytes)> allocate;
  std::function<void(void* ptr)> release;
  bool host_addressable = false;  // true for cuda-emu: poisoning applies
};

class CachingAllocator {
 public:
  using StreamKey = const void*;  // a cudaStream_t, compared by value only

  CachingAllocator(RawDeviceMemory raw, bool caching_enabled);
  ~CachingAllocator();  // releases cached blocks; blocks still in use are reported as leaked
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (256-byte aligned, as cudaMalloc) for use on `stream`.
  // Throws ich::Error when the device has no memory left even after emptying the cache.
  void* allocate(size_t bytes, StreamKey stream);
  // Returns ptr (from allocate; null is ignored) to its stream's free list, or to the
  // device when caching is off. Throws ich::Error for a pointer it did not hand out.
  void deallocate(void* ptr);
  // Gives every cached block back to the device. The caller synchronises first.
  void release_cached();

  MemoryStats stats() const;
  bool caching_enabled() const { return caching_enabled_; }
  size_t blocks_in_use() const;

  // The size a request of `bytes` occupies (see the size classes above).
  static size_t size_class(size_t bytes);

 private:
  struct Block {
    size_t size = 0;       // the size class
    size_t requested = 0;  // what the caller asked for
    StreamKey stream = nullptr;
  };
  void* device_allocate(size_t size);
  void release_cached_locked();
  void poison(void* ptr, size_t bytes) const;
  void unpoison(void* ptr, size_t bytes) const;

  RawDeviceMemory raw_;
  bool caching_enabled_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> in_use_;
  std::map<std::pair<StreamKey, size_t>, std::vector<void*>> free_lists_;
  MemoryStats stats_;
};

}  // namespace ich::ICH_CUDA_NS
