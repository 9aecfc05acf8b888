// Options of a CUDA backend instance, and factories that take them.
//
// The registry (backend_for) builds each CUDA backend with the defaults below, which
// read the environment once. Tests and benchmarks that need another configuration
// (small grids, the allocator off, our SGEMM instead of cuBLAS) build their own
// instance with make_cuda_emu_backend_with / make_cuda_backend_with.
//
// Environment (read by CudaBackendOptions::from_environment):
//   ICH_CUDA_MAX_BLOCKS=N      cap every 1-D grid at N blocks (grid-stride loops then do
//                              the rest); tests use 1 or 2 to prove the loops are right
//   ICH_CUDA_SYNC_LAUNCH=1     synchronise and check after every launch (debugging)
//   ICH_CUDA_CACHING_ALLOCATOR=0  every alloc/free goes to cudaMalloc/cudaFree
//   ICH_CUDA_GEMM=ours|cublas  which SGEMM gemm() runs (cuda only; cuda-emu is always ours)
#pragma once

#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>

#include "core/error.h"
#include "kernels/backend.h"

namespace ich {

enum class GemmImpl { automatic, ours, cublas };

struct CudaBackendOptions {
  int max_blocks = 0;              // 0: the flavour's default cap
  bool sync_after_launch = false;  // cudaStreamSynchronize + check after each launch
  bool caching_allocator = true;
  GemmImpl gemm = GemmImpl::automatic;  // automatic: cuBLAS on a GPU, ours in cuda-emu

  // Defined inline because both flavours (and their users) see it.
  static CudaBackendOptions from_environment() {
    CudaBackendOptions o;
    if (const char* s = std::getenv("ICH_CUDA_MAX_BLOCKS")) o.max_blocks = std::atoi(s);
    if (const char* s = std::getenv("ICH_CUDA_SYNC_LAUNCH"))
      o.sync_after_launch = std::atoi(s) != 0;
    if (const char* s = std::getenv("ICH_CUDA_CACHING_ALLOCATOR"))
      o.caching_allocator = std::atoi(s) != 0;
    if (const char* s = std::getenv("ICH_CUDA_GEMM")) {
      const bool ours = std::strcmp(s, "ours") == 0, cublas = std::strcmp(s, "cublas") == 0;
      ICH_CHECK(ours || cublas, "ICH_CUDA_GEMM is '" << s << "'; use ours or cublas");
      o.gemm = ours ? GemmImpl::ours : GemmImpl::cublas;
    }
    return o;
  }
};

// Each is defined by its flavour's library; call one only when the build has it
// (ICH_HAVE_CUDA_EMU / ICH_HAVE_CUDA) and, for cuda, when backend_available(Device::cuda(i)).
std::unique_ptr<Backend> make_cuda_emu_backend_with(const CudaBackendOptions& options);
std::unique_ptr<Backend> make_cuda_backend_with(int index, const CudaBackendOptions& options);

// Device time of `work` (calls on a CUDA backend, issued on its stream), in milliseconds,
// measured with CUDA events around it; for benchmarks. cuda-emu's events are host clocks.
// `backend` must be of that flavour (throws ich::Error otherwise).
namespace cuda {
float stream_time_ms(Backend& backend, const std::function<void()>& work);
}
namespace cuda_emu {
float stream_time_ms(Backend& backend, const std::function<void()>& work);
}

}  // namespace ich
