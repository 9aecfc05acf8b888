// What the GPU benchmarks compare that is not one of our primitives (the primitives
// themselves are the op table's: bench_ops.cpp): cuDNN's convolution (the peer of
// kernels/cuda/cudnn_peer.h) on the shapes of the table's BM_cuda_conv2d_* cases, and the
// caching allocator on against off:
//   build/bench/ich_bench --benchmark_filter='cuda_conv|cuda_cudnn|cuda_allocator'
// Without a GPU every case is skipped with a message saying so.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include "bench/bench_common.h"
#include "core/ceil_div.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"
#include "ops/op_case.h"
#if defined(ICH_HAVE_CUDNN)
#include "kernels/cuda/cudnn_peer.h"
#endif

namespace {

using ich::Backend;
using ich::ceil_div;
using ich::bench::DeviceFloats;
using ich::bench::gpu;
using ich::bench::run;
using ich::test::ops::kActivation;
using ich::test::ops::kBatch;
using ich::test::ops::kChannels;

// ---- cuDNN's convolution on the U-Net's 3x3 layers {in channels, out channels, side}

#define ICH_UNET_CONV_ARGS \
  ->Args({1, 64, 160})->Args({64, 64, 160})->Args({128, 128, 80})->Args({256, 256, 40})

enum class ConvPass { forward, backward_data, backward_weight };

// A 3x3, pad 1, stride 1 convolution from the benchmark's arguments, batch 4.
ich::Conv2dShape conv_of(const benchmark::State& state) {
  return ich::test::ops::conv_shape(kBatch, int(state.range(0)), int(state.range(2)),
                                    int(state.range(2)), int(state.range(1)), 3, 3, 1, 1, 1, 1);
}

int64_t x_floats(const ich::Conv2dShape& s) {
  return int64_t(s.n) * s.c * s.h * s.w;
}
int64_t y_floats(const ich::Conv2dShape& s) {
  return int64_t(s.n) * s.k * s.out_h() * s.out_w();
}
int64_t w_floats(const ich::Conv2dShape& s) {
  return int64_t(s.k) * s.col_rows();
}
double conv_flops(const ich::Conv2dShape& s) {
  return 2.0 * s.n * s.k * double(s.col_rows()) * double(s.col_cols());
}

void cudnn_case(benchmark::State& state, ConvPass pass, bool allow_tf32) {
#if defined(ICH_HAVE_CUDNN)
  Backend* be = gpu(state);
  if (!be) return;
  const ich::Conv2dShape s = conv_of(state);
  std::unique_ptr<ich::CudnnConv2d> peer;
  try {
    peer = ich::make_cudnn_conv2d(*be, s, allow_tf32);
  } catch (const std::exception& e) {  // cuDNN missing where this runs: say so, go on
    state.SkipWithError(e.what());
    return;
  }
  state.SetLabel(peer->algorithms());
  DeviceFloats x(*be, x_floats(s), 1), w(*be, w_floats(s), 2), bias(*be, s.k, 3);
  DeviceFloats y(*be, y_floats(s), 4);
  const size_t ws_bytes = peer->workspace_bytes();
  DeviceFloats workspace(*be, int64_t(ceil_div(ws_bytes, sizeof(float))));
  void* ws = ws_bytes > 0 ? workspace.get() : nullptr;
  const int64_t moved = x_floats(s) + w_floats(s) + y_floats(s);
  switch (pass) {
    case ConvPass::forward:
      run(
          state, *be, [&] { peer->forward(x.get(), w.get(), bias.get(), y.get(), ws); }, moved,
          conv_flops(s));
      break;
    case ConvPass::backward_data:
      run(
          state, *be, [&] { peer->backward_data(y.get(), w.get(), x.get(), ws); }, moved,
          conv_flops(s));
      break;
    case ConvPass::backward_weight:
      run(
          state, *be, [&] { peer->backward_weight(x.get(), y.get(), w.get(), ws); }, moved,
          conv_flops(s));
      break;
  }
#else
  (void)pass;
  (void)allow_tf32;
  state.SkipWithError("this build has no cuDNN (libcudnn was not found at configure time)");
#endif
}

void BM_cuda_cudnn_conv2d_forward(benchmark::State& state) {
  cudnn_case(state, ConvPass::forward, false);
}
void BM_cuda_cudnn_conv2d_forward_tf32(benchmark::State& state) {
  cudnn_case(state, ConvPass::forward, true);
}
void BM_cuda_cudnn_conv2d_backward_data(benchmark::State& state) {
  cudnn_case(state, ConvPass::backward_data, false);
}
void BM_cuda_cudnn_conv2d_backward_weight(benchmark::State& state) {
  cudnn_case(state, ConvPass::backward_weight, false);
}
ICH_CUDA_BENCH(BM_cuda_cudnn_conv2d_forward) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_cudnn_conv2d_forward_tf32) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_cudnn_conv2d_backward_data) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_cudnn_conv2d_backward_weight) ICH_UNET_CONV_ARGS;

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
