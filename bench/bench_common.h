// What the benchmark suites share: the GPU backend or a skip message, the two timing loops
// (wall time on the CPU, device time from CUDA events on the GPU) with their counters, and
// the runner of an op case of the op table (tests/ops/op_case.h) on a backend.
//
// Counters: bytes_per_second from the floats a call must read and write once; GFLOP/s from
// its FLOPs, a multiply-add counted as 2 (when the case has them).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"
#include "ops/op_case.h"

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

inline void set_counters(benchmark::State& state, int64_t floats_moved, double flops) {
  state.SetBytesProcessed(int64_t(state.iterations()) * floats_moved * int64_t(sizeof(float)));
  if (flops > 0.0)
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Runs `call` once per iteration, timed on the device (UseManualTime), after one warm-up call
// (first touch, cuBLAS / cuDNN heuristics).
template <typename Call>
void run(benchmark::State& state, Backend& backend, Call call, int64_t floats_moved,
         double flops = 0.0) {
  call();
  backend.synchronize();
  for (auto _ : state) state.SetIterationTime(time_ms(backend, call) * 1e-3);
  set_counters(state, floats_moved, flops);
}

// An op case's buffers as plain allocations on one backend, freed at the end.
class BenchRun : public test::ops::OpRun {
 public:
  explicit BenchRun(Backend& backend) : OpRun(backend) {}
  ~BenchRun() override {
    for (void* p : owned_) backend.free(p);
  }

 protected:
  void* allocate(test::ops::Role, test::ops::ElementType, size_t elem_bytes, const void* init,
                 size_t count) override {
    void* p = backend.alloc(count * elem_bytes);
    owned_.push_back(p);
    if (count > 0) backend.copy_from_host(p, init, count * elem_bytes);
    return p;
  }

 private:
  std::vector<void*> owned_;
};

// Times one op case on `backend`: the GPU's device time (device_time) or wall time, since
// OpenMP and BLAS threads do the CPU's work (UseRealTime). A case the backend refuses skips
// with the backend's message instead of ending the run.
inline void run_op_case(benchmark::State& state, Backend& backend, const test::ops::OpCase& c,
                        bool device_time) {
  try {
    BenchRun buffers(backend);
    const test::ops::Call call = c.setup(buffers);
    if (device_time) {
      run(state, backend, call, c.floats_moved, c.flops);
      return;
    }
    for (auto _ : state) {
      call();
      benchmark::ClobberMemory();
    }
    set_counters(state, c.floats_moved, c.flops);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

inline Backend& cpu() {
  return backend_for(Device::cpu());
}

}  // namespace ich::bench

#define ICH_CUDA_BENCH(fn) BENCHMARK(fn)->Unit(benchmark::kMicrosecond)->UseManualTime()
