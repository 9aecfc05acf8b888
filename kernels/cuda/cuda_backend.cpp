// CudaBackend: construction, memory, synchronisation, statistics, and the factories the
// registry calls. The primitives are defined next to their kernels (see cuda_backend.h).
//
// Ordering: everything a backend does is issued on its one stream, so kernels, copies and
// the caching allocator's reuse are ordered without events. Copies to the host wait for
// the stream; copies from the host wait too, so the caller may reuse its buffer at once.
#include "kernels/cuda/cuda_backend.h"

#include <cstdio>

#include "core/error.h"

namespace ich::ICH_CUDA_NS {

namespace {

RawDeviceMemory device_memory() {
  RawDeviceMemory raw;
  raw.allocate = [](size_t bytes) -> void* {
    void* ptr = nullptr;
    if (cudaMalloc(&ptr, bytes) != cudaSuccess) {
      (void)cudaGetLastError();  // out of memory is handled by the allocator, not sticky
      return nullptr;
    }
    return ptr;
  };
  raw.release = [](void* ptr) { (void)cudaFree(ptr); };
#if defined(ICH_CUDA_EMU)
  raw.host_addressable = true;
#endif
  return raw;
}

}  // namespace

CudaBackend::CudaBackend(int device_index, const CudaBackendOptions& options)
    : device_index_(device_index), options_(options) {
  ICH_CHECK(options.max_blocks >= 0,
            "max_blocks must be >= 0 (0 = default), got " << options.max_blocks);
  CUDA_CHECK(cudaSetDevice(device_index));
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  launch_.stream = stream;
  launch_.max_blocks = options.max_blocks > 0 ? options.max_blocks : kDefaultMaxBlocks;
  launch_.sync_after_launch = options.sync_after_launch;
#if !defined(ICH_CUDA_EMU)
  if (options_.gemm == GemmImpl::automatic) options_.gemm = GemmImpl::cublas;
  CUBLAS_CHECK(cublasCreate(&cublas_));
  CUBLAS_CHECK(cublasSetStream(cublas_, stream));
  // Full FP32: no TF32 tensor-core rounding, so parity with the CPU holds.
  CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
#else
  ICH_CHECK(options_.gemm != GemmImpl::cublas,
            "cuda-emu has no cuBLAS: ICH_CUDA_GEMM=cublas needs the cuda device");
  options_.gemm = GemmImpl::ours;
#endif
  allocator_ = std::make_unique<CachingAllocator>(device_memory(), options.caching_allocator);
  reduction_scratch_ = static_cast<float*>(
      allocator_->allocate(sizeof(float) * kMaxReductionBlocks * kReductionSlots, stream));
}

CudaBackend::~CudaBackend() {
  // A destructor must not throw: failures here are reported and otherwise ignored.
  if (cudaStreamSynchronize(launch_.stream) != cudaSuccess)
    std::fprintf(stderr, "ichseg: %s backend: stream failed while shutting down: %s\n", name(),
                 cudaGetErrorString(cudaGetLastError()));
  try {
    allocator_->deallocate(reduction_scratch_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ichseg: %s\n", e.what());
  }
  allocator_.reset();
#if !defined(ICH_CUDA_EMU)
  if (cublas_) cublasDestroy(cublas_);
#endif
  (void)cudaStreamDestroy(launch_.stream);
}

Device CudaBackend::device() const {
#if defined(ICH_CUDA_EMU)
  return Device::cuda_emu();
#else
  return Device::cuda(device_index_);
#endif
}

const char* CudaBackend::name() const {
  return ICH_CUDA_FLAVOUR;
}

void* CudaBackend::alloc(size_t bytes) {
  return allocator_->allocate(bytes, launch_.stream);
}

void CudaBackend::free(void* ptr) {
  allocator_->deallocate(ptr);
}

void CudaBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  checks::copy("copy_from_host", dst, src, bytes);
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, launch_.stream));
  CUDA_CHECK(cudaStreamSynchronize(launch_.stream));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  checks::copy("copy_to_host", dst, src, bytes);
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, launch_.stream));
  CUDA_CHECK(cudaStreamSynchronize(launch_.stream));
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  checks::copy("copy", dst, src, bytes);
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, launch_.stream));
}

void CudaBackend::synchronize() {
  CUDA_CHECK(cudaStreamSynchronize(launch_.stream));
}

MemoryStats CudaBackend::memory_stats() const {
  return allocator_->stats();
}

float stream_time_ms(Backend& backend, const std::function<void()>& work) {
  auto* cuda_backend = dynamic_cast<CudaBackend*>(&backend);
  ICH_CHECK(cuda_backend != nullptr, "stream_time_ms: backend "
                                         << backend.name()
                                         << " is not a " ICH_CUDA_FLAVOUR " backend");
  cudaEvent_t start = nullptr, stop = nullptr;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  float ms = 0.0f;
  try {
    CUDA_CHECK(cudaEventRecord(start, cuda_backend->stream()));
    work();
    CUDA_CHECK(cudaEventRecord(stop, cuda_backend->stream()));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
}

}  // namespace ich::ICH_CUDA_NS

// ---- the factories: each flavour defines its own, once
namespace ich {

#if defined(ICH_CUDA_EMU)
std::unique_ptr<Backend> make_cuda_emu_backend_with(const CudaBackendOptions& options) {
  return std::make_unique<cuda_emu::CudaBackend>(0, options);
}

std::unique_ptr<Backend> make_cuda_emu_backend() {
  return make_cuda_emu_backend_with(CudaBackendOptions::from_environment());
}
#else
int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no GPU: not an error, just none
    return 0;
  }
  return count;
}

std::unique_ptr<Backend> make_cuda_backend_with(int index, const CudaBackendOptions& options) {
  const int count = cuda_device_count();
  ICH_CHECK(index >= 0 && index < count, "device cuda:" << index
                                                        << " is not present: this machine has "
                                                        << count << " usable GPU(s)");
  return std::make_unique<cuda::CudaBackend>(index, options);
}

std::unique_ptr<Backend> make_cuda_backend(int index) {
  return make_cuda_backend_with(index, CudaBackendOptions::from_environment());
}
#endif

}  // namespace ich
