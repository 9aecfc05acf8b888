// Every benchmark of the op table (tests/ops/op_case.h: the entries' `bench` lists): each
// primitive at the U-Net's shapes (batch 4, the first block's 64 channels at the ICH papers'
// 160x160 patches), on the CPU and on the GPU (cuda:0) under the same names as ever:
//   build/bench/ich_bench --benchmark_filter='cpu_'        every CPU primitive
//   build/bench/ich_bench --benchmark_filter='cuda_|cpu_'  the GPU's next to the CPU's
// CPU cases run in wall time (OpenMP and BLAS threads do the work; UseRealTime), GPU cases
// in device time from CUDA events around each call (UseManualTime). bytes_per_second counts
// the bytes a call must read and write once; GFLOP/s counts multiply-adds as 2 FLOPs.
// Without a GPU every cuda case is skipped with a message saying so (the cuda-emu backend
// runs the same kernels, but its timings mean nothing).
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/bench_common.h"
#include "ops/op_case.h"

namespace {

using ich::test::ops::OpBench;

void register_op_benchmark(const OpBench& b) {
  const bool on_gpu = b.device == OpBench::Device::cuda;
  benchmark::internal::Benchmark* registered =
      benchmark::RegisterBenchmark(b.name.c_str(), [b, on_gpu](benchmark::State& state) {
        std::vector<int64_t> args;
        for (size_t i = 0; i < (b.args.empty() ? 0 : b.args.front().size()); ++i)
          args.push_back(state.range(int(i)));
        ich::Backend* backend = on_gpu ? ich::bench::gpu(state, b.gemm) : &ich::bench::cpu();
        if (backend == nullptr) return;
        ich::bench::run_op_case(state, *backend, b.make(args), on_gpu);
      });
  for (const std::vector<int64_t>& row : b.args) registered->Args(row);
  const bool us = b.unit == OpBench::Unit::us || (on_gpu && b.unit == OpBench::Unit::automatic);
  registered->Unit(us ? benchmark::kMicrosecond : benchmark::kMillisecond);
  if (on_gpu) {
    registered->UseManualTime();
  } else {
    registered->UseRealTime();
  }
}

const bool registered = [] {
  for (const ich::test::ops::OpEntry& e : ich::test::ops::op_table())
    for (const OpBench& b : e.bench) register_op_benchmark(b);
  return true;
}();

}  // namespace
