// What the CUDA benchmark suites (bench_cuda_primitives.cpp, bench_cuda_conv.cpp) share:
// the GPU backend or a skip message, device buffers filled with uniform values, and the
// loop that times each iteration on the device with CUDA events (UseManualTime).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"

namespace ich::bench {

// The GPU backend (cuda:0) built with `options` (null: the process-wide backend), or null
// after telling the benchmark why there is none.
inline Backend* gpu(benchmark::State& state, const CudaBackendOptions* options = nullptr) {
#ifdef ICH_HAVE_CUDA
  if (backend_available(Device::cuda(0))) {
    if (options == nullptr) return &backend_for(Device::cuda(0));
    // One instance per distinct option set, kept for the process.
    static std::vector<std::pair<std::string, std::unique_ptr<Backend>>> instances;
    const std::string key = std::to_string(options->caching_allocator) + "/" +
                            std::to_string(static_cast<int>(options->gemm));
    for (auto& [k, b] : instances)
      if (k == key) return b.get();
    instances.emplace_back(key, make_cuda_backend_with(0, *options));
    return instances.back().second.get();
  }
  state.SkipWithError("no GPU present: the cuda benchmarks need a CUDA device (see docs/CUDA.md)");
#else
  (void)options;
  state.SkipWithError(
      "this build has no cuda backend (nvcc was not found at configure time; see docs/CUDA.md)");
#endif
  return nullptr;
}

// The GPU backend with the given GEMM and the environment's other options.
inline Backend* gpu(benchmark::State& state, GemmImpl gemm) {
  if (gemm == GemmImpl::automatic) return gpu(state);
  CudaBackendOptions options = CudaBackendOptions::from_environment();
  options.gemm = gemm;
  return gpu(state, &options);
}

// Device memory owned for the length of one benchmark, filled with uniform values in
// [lo, hi) drawn from `seed`.
class DeviceFloats {
 public:
  DeviceFloats(Backend& backend, int64_t n, uint64_t seed = 1, float lo = -1.0f, float hi = 1.0f)
      : backend_(backend), ptr_(static_cast<float*>(backend.alloc(sizeof(float) * size_t(n)))) {
    if (n > 0) backend.uniform(ptr_, n, seed, 0, lo, hi);
  }
  ~DeviceFloats() { backend_.free(ptr_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  float* get() const { return ptr_; }
  int32_t* as_int() const { return reinterpret_cast<int32_t*>(ptr_); }

 private:
  Backend& backend_;
  float* ptr_;
};

inline float time_ms(Backend& backend, const std::function<void()>& work) {
#ifdef ICH_HAVE_CUDA
  return cuda::stream_time_ms(backend, work);
#else
  (void)backend;  // never reached: gpu() has skipped every case of a build without cuda
  (void)work;
  return 0.0f;
#endif
}

// Runs `call` once per iteration, timed on the device; bytes_per_second from the floats a
// call must move, GFLOP/s from `flops` (multiply-adds count as 2) when given.
template <typename Call>
void run(benchmark::State& state, Backend& backend, Call call, int64_t floats_moved,
         double flops = 0.0) {
  call();  // warm-up: first touch, cuBLAS / cuDNN heuristics
  backend.synchronize();
  for (auto _ : state) state.SetIterationTime(time_ms(backend, call) * 1e-3);
  state.SetBytesProcessed(int64_t(state.iterations()) * floats_moved * int64_t(sizeof(float)));
  if (flops > 0.0)
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace ich::bench

#define ICH_CUDA_BENCH(fn) BENCHMARK(fn)->Unit(benchmark::kMicrosecond)->UseManualTime()
