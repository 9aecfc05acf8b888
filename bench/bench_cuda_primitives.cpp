// Google Benchmark cases for cuda-core's primitives on the GPU (cuda:0), at the shapes of
// bench_cpu_primitives.cpp so the two read side by side:
//   build/bench/ich_bench --benchmark_filter='cuda_|cpu_'
// Each iteration's time is device time from CUDA events around the call (UseManualTime).
// bytes_per_second counts the bytes a call must read and write once; GFLOP/s counts
// multiply-adds as 2 FLOPs. Also: our tiled SGEMM against cuBLAS, and the caching
// allocator on against off. Without a GPU every case is skipped with a message saying so
// (the cuda-emu backend runs the same kernels, but its timings mean nothing).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/cuda_bench_common.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"

namespace {

using ich::Backend;

constexpr int kBatch = 4, kChannels = 64, kSide = 160;
constexpr int64_t kPlane = int64_t(kSide) * kSide;
constexpr int64_t kActivation = int64_t(kBatch) * kChannels * kPlane;  // (4, 64, 160, 160)
constexpr int64_t kParameters = 7'800'000;                             // about the paper's U-Net

using ich::bench::DeviceFloats;
using ich::bench::gpu;
using ich::bench::run;

// ---- GEMM: ours against cuBLAS

void gemm_case(benchmark::State& state, ich::GemmImpl impl) {
  ich::CudaBackendOptions options = ich::CudaBackendOptions::from_environment();
  options.gemm = impl;
  Backend* be = gpu(state, &options);
  if (!be) return;
  const int n = int(state.range(0));
  DeviceFloats a(*be, int64_t(n) * n, 1), b(*be, int64_t(n) * n, 2), c(*be, int64_t(n) * n, 3);
  run(
      state, *be,
      [&] { be->gemm(false, false, n, n, n, 1.0f, a.get(), n, b.get(), n, 0.0f, c.get(), n); },
      3 * int64_t(n) * n, 2.0 * n * n * n);
}
void BM_cuda_gemm_ours(benchmark::State& state) {
  gemm_case(state, ich::GemmImpl::ours);
}
void BM_cuda_gemm_cublas(benchmark::State& state) {
  gemm_case(state, ich::GemmImpl::cublas);
}
ICH_CUDA_BENCH(BM_cuda_gemm_ours)->Arg(256)->Arg(1024)->Arg(4096);
ICH_CUDA_BENCH(BM_cuda_gemm_cublas)->Arg(256)->Arg(1024)->Arg(4096);

// ---- fill, random, windowing

void BM_cuda_fill(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1);
  run(
      state, *be, [&] { be->fill(x.get(), kActivation, 0.5f); }, kActivation);
}
ICH_CUDA_BENCH(BM_cuda_fill);

void BM_cuda_uniform(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1);
  run(
      state, *be, [&] { be->uniform(x.get(), kActivation, 7, 0, -1.0f, 1.0f); }, kActivation);
}
ICH_CUDA_BENCH(BM_cuda_uniform);

void BM_cuda_normal(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1);
  run(
      state, *be, [&] { be->normal(x.get(), kActivation, 7, 0, 0.0f, 1.0f); }, kActivation);
}
ICH_CUDA_BENCH(BM_cuda_normal);

// A 512x512x40 CT volume.
void BM_cuda_ct_window(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  const int64_t n = 512 * 512 * 40;
  DeviceFloats hu(*be, n, 1, -1024.0f, 3071.0f), out(*be, n, 2);
  run(
      state, *be, [&] { be->ct_window(hu.get(), out.get(), n, 40.0f, 120.0f); }, 2 * n);
}
ICH_CUDA_BENCH(BM_cuda_ct_window);

void BM_cuda_ct_window_i16(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  const int64_t n = 512 * 512 * 40;
  auto* hu = static_cast<int16_t*>(be->alloc(sizeof(int16_t) * n));
  std::vector<int16_t> host(n);
  for (int64_t i = 0; i < n; ++i) host[i] = int16_t(i % 4096 - 1024);
  be->copy_from_host(hu, host.data(), sizeof(int16_t) * n);
  DeviceFloats out(*be, n, 2);
  // bytes: 2 read + 4 written per element, counted as 1.5 floats
  run(
      state, *be, [&] { be->ct_window_i16(hu, out.get(), n, 40.0f, 120.0f); }, n + n / 2);
  be->free(hu);
}
ICH_CUDA_BENCH(BM_cuda_ct_window_i16);

// ---- elementwise and reductions on a (4, 64, 160, 160) activation

void BM_cuda_add(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats a(*be, kActivation, 1), b(*be, kActivation, 2), y(*be, kActivation, 3);
  run(
      state, *be, [&] { be->add(a.get(), b.get(), y.get(), kActivation); }, 3 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_add);

void BM_cuda_mul(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats a(*be, kActivation, 1), b(*be, kActivation, 2), y(*be, kActivation, 3);
  run(
      state, *be, [&] { be->mul(a.get(), b.get(), y.get(), kActivation); }, 3 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_mul);

void BM_cuda_scale(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1), y(*be, kActivation, 2);
  run(
      state, *be, [&] { be->scale(x.get(), y.get(), kActivation, 0.5f); }, 2 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_scale);

void BM_cuda_axpy(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1), y(*be, kActivation, 2);
  run(
      state, *be, [&] { be->axpy(1e-3f, x.get(), y.get(), kActivation); }, 3 * kActivation,
      2.0 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_axpy);

void BM_cuda_sum(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1), out(*be, 1, 2);
  run(
      state, *be, [&] { be->sum(x.get(), kActivation, out.get()); }, kActivation);
}
ICH_CUDA_BENCH(BM_cuda_sum);

// ---- activations, dropout, concat

void BM_cuda_relu_forward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1), y(*be, kActivation, 2);
  run(
      state, *be, [&] { be->relu_forward(x.get(), y.get(), kActivation); }, 2 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_relu_forward);

void BM_cuda_relu_backward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats dy(*be, kActivation, 1), x(*be, kActivation, 2), dx(*be, kActivation, 3);
  run(
      state, *be, [&] { be->relu_backward(dy.get(), x.get(), dx.get(), kActivation); },
      3 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_relu_backward);

void BM_cuda_sigmoid_forward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1), y(*be, kActivation, 2);
  run(
      state, *be, [&] { be->sigmoid_forward(x.get(), y.get(), kActivation); }, 2 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_sigmoid_forward);

void BM_cuda_sigmoid_backward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats dy(*be, kActivation, 1), y(*be, kActivation, 2, 0.0f, 1.0f), dx(*be, kActivation, 3);
  run(
      state, *be, [&] { be->sigmoid_backward(dy.get(), y.get(), dx.get(), kActivation); },
      3 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_sigmoid_backward);

void BM_cuda_dropout2d_forward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats x(*be, kActivation, 1), y(*be, kActivation, 2), mask(*be, kBatch * kChannels, 3);
  uint64_t offset = 0;
  run(
      state, *be,
      [&] {
        be->dropout2d_forward(x.get(), y.get(), mask.get(), kBatch, kChannels, kPlane, 0.4f, 1,
                              offset);
        offset += kBatch * kChannels;
      },
      2 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_dropout2d_forward);

void BM_cuda_dropout2d_backward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats dy(*be, kActivation, 1), dx(*be, kActivation, 2), mask(*be, kBatch * kChannels, 3);
  run(
      state, *be,
      [&] { be->dropout2d_backward(dy.get(), mask.get(), dx.get(), kBatch, kChannels, kPlane); },
      2 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_dropout2d_backward);

// The U-Net's first skip: two (4, 64, 160, 160) halves into (4, 128, 160, 160).
void BM_cuda_concat_channels(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats a(*be, kActivation, 1), b(*be, kActivation, 2), y(*be, 2 * kActivation, 3);
  run(
      state, *be,
      [&] { be->concat_channels(a.get(), b.get(), y.get(), kBatch, kChannels, kChannels, kPlane); },
      4 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_concat_channels);

void BM_cuda_split_channels(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats a(*be, kActivation, 1), b(*be, kActivation, 2), y(*be, 2 * kActivation, 3);
  run(
      state, *be,
      [&] { be->split_channels(y.get(), a.get(), b.get(), kBatch, kChannels, kChannels, kPlane); },
      4 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_split_channels);

// ---- losses on a (16, 1, 160, 160) prediction

constexpr int64_t kPrediction = int64_t(16) * kPlane;

void BM_cuda_soft_dice_forward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats p(*be, kPrediction, 1, 0.0f, 1.0f), t(*be, kPrediction, 2, 0.0f, 1.0f);
  DeviceFloats stats(*be, 2, 3), loss(*be, 1, 4);
  run(
      state, *be,
      [&] { be->soft_dice_forward(p.get(), t.get(), kPrediction, 1.0f, stats.get(), loss.get()); },
      2 * kPrediction);
}
ICH_CUDA_BENCH(BM_cuda_soft_dice_forward);

void BM_cuda_soft_dice_backward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats p(*be, kPrediction, 1, 0.0f, 1.0f), t(*be, kPrediction, 2, 0.0f, 1.0f);
  DeviceFloats stats(*be, 2, 3, 1.0f, 2.0f), dloss(*be, 1, 4), dp(*be, kPrediction, 5);
  run(
      state, *be,
      [&] {
        be->soft_dice_backward(p.get(), t.get(), kPrediction, 1.0f, stats.get(), dloss.get(),
                               dp.get());
      },
      2 * kPrediction);
}
ICH_CUDA_BENCH(BM_cuda_soft_dice_backward);

void BM_cuda_bce_forward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats p(*be, kPrediction, 1, 0.01f, 0.99f), t(*be, kPrediction, 2, 0.0f, 1.0f);
  DeviceFloats loss(*be, 1, 3);
  run(
      state, *be, [&] { be->bce_forward(p.get(), t.get(), kPrediction, loss.get()); },
      2 * kPrediction);
}
ICH_CUDA_BENCH(BM_cuda_bce_forward);

void BM_cuda_bce_backward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats p(*be, kPrediction, 1, 0.01f, 0.99f), t(*be, kPrediction, 2, 0.0f, 1.0f);
  DeviceFloats dloss(*be, 1, 3), dp(*be, kPrediction, 4);
  run(
      state, *be, [&] { be->bce_backward(p.get(), t.get(), kPrediction, dloss.get(), dp.get()); },
      3 * kPrediction);
}
ICH_CUDA_BENCH(BM_cuda_bce_backward);

// ---- Adam over the whole model: param, grad, m, v read and param, m, v written

void BM_cuda_adam_step(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats param(*be, kParameters, 1), grad(*be, kParameters, 2), m(*be, kParameters, 3);
  DeviceFloats v(*be, kParameters, 4, 0.0f, 1e-3f);
  ich::AdamParams p;
  run(
      state, *be,
      [&] {
        be->adam_step(param.get(), grad.get(), m.get(), v.get(), kParameters, p);
        ++p.step;
      },
      7 * kParameters);
}
ICH_CUDA_BENCH(BM_cuda_adam_step);

// ---- the caching allocator on and off: the buffers of one U-Net block's step, allocated
// and freed; wall time, since cudaMalloc/cudaFree cost host time and synchronise.

void allocator_case(benchmark::State& state, bool caching) {
  ich::CudaBackendOptions options = ich::CudaBackendOptions::from_environment();
  options.caching_allocator = caching;
  Backend* be = gpu(state, &options);
  if (!be) return;
  const std::vector<size_t> sizes = {size_t(kActivation),
                                     size_t(kActivation),
                                     size_t(kActivation),
                                     size_t(2 * kActivation),
                                     size_t(64 * 64 * 9),
                                     size_t(64),
                                     size_t(64),
                                     size_t(kBatch * kChannels),
                                     size_t(1)};
  std::vector<void*> held(sizes.size());
  for (auto _ : state) {
    for (size_t i = 0; i < sizes.size(); ++i) held[i] = be->alloc(sizes[i] * sizeof(float));
    for (void* p : held) be->free(p);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(sizes.size()));
  const ich::MemoryStats s = be->memory_stats();
  state.counters["cudaMalloc_calls"] = double(s.device_alloc_calls);
  state.counters["cache_hits"] = double(s.cache_hits);
}
void BM_cuda_allocator_caching(benchmark::State& state) {
  allocator_case(state, true);
}
void BM_cuda_allocator_off(benchmark::State& state) {
  allocator_case(state, false);
}
BENCHMARK(BM_cuda_allocator_caching)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_cuda_allocator_off)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
