// Google Benchmark cases for every CPU primitive at U-Net shapes: the first block of the
// paper's U-Net is 64 channels at 160x160 (ICH patches) with batch 4.
//   build-cpu/bench/ich_bench --benchmark_filter=cpu --benchmark_min_time=0.1
// bytes_per_second counts the bytes each call must read and write once; GFLOP/s counts
// multiply-adds as 2 FLOPs. Wall time (UseRealTime), since OpenMP and BLAS threads do the work.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/conv_algo.h"

namespace {

using ich::Backend;

constexpr int kBatch = 4, kChannels = 64, kSide = 160;
constexpr int64_t kPlane = int64_t(kSide) * kSide;
constexpr int64_t kActivation = int64_t(kBatch) * kChannels * kPlane;  // (4, 64, 160, 160)

Backend& cpu() {
  return ich::backend_for(ich::Device::cpu());
}

std::vector<float> values(int64_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(static_cast<size_t>(n));
  cpu().uniform(v.data(), n, seed, 0, lo, hi);
  return v;
}

void set_traffic(benchmark::State& state, int64_t floats_moved, double flops = 0.0) {
  state.SetBytesProcessed(int64_t(state.iterations()) * floats_moved * int64_t(sizeof(float)));
  if (flops > 0.0) {
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  }
}

ich::Conv2dShape unet_conv() {
  ich::Conv2dShape s;
  s.n = kBatch, s.c = kChannels, s.h = kSide, s.w = kSide, s.k = kChannels;
  s.kh = s.kw = 3, s.pad_h = s.pad_w = 1, s.stride_h = s.stride_w = 1;
  return s;
}

double conv_flops(const ich::Conv2dShape& s) {
  return 2.0 * s.n * s.k * double(s.col_rows()) * double(s.col_cols());
}

// ---- GEMM and convolution

void BM_cpu_gemm_1024(benchmark::State& state) {
  const int n = 1024;
  const std::vector<float> a = values(int64_t(n) * n, 1), b = values(int64_t(n) * n, 2);
  std::vector<float> c(size_t(n) * n);
  for (auto _ : state) {
    cpu().gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_traffic(state, 3 * int64_t(n) * n, 2.0 * n * n * n);
}
BENCHMARK(BM_cpu_gemm_1024)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_im2col_64x160x160_3x3(benchmark::State& state) {
  ich::Conv2dShape s = unet_conv();
  const std::vector<float> x = values(int64_t(s.c) * kPlane, 3);
  std::vector<float> col(cpu().conv2d_workspace_floats(s));
  for (auto _ : state) {
    cpu().im2col(x.data(), col.data(), s);
    benchmark::DoNotOptimize(col.data());
  }
  set_traffic(state, int64_t(x.size() + col.size()));
}
BENCHMARK(BM_cpu_im2col_64x160x160_3x3)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_conv2d_forward_4x64x160x160_k64_3x3(benchmark::State& state) {
  const ich::Conv2dShape s = unet_conv();
  const std::vector<float> x = values(kActivation, 4), w = values(int64_t(s.k) * s.col_rows(), 5);
  const std::vector<float> bias = values(s.k, 6);
  std::vector<float> y(kActivation), ws(cpu().conv2d_workspace_floats(s));
  for (auto _ : state) {
    cpu().conv2d_forward(x.data(), w.data(), bias.data(), y.data(), s, ws.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 2 * kActivation + int64_t(w.size()), conv_flops(s));
}
BENCHMARK(BM_cpu_conv2d_forward_4x64x160x160_k64_3x3)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_conv2d_backward_data_4x64x160x160_k64_3x3(benchmark::State& state) {
  const ich::Conv2dShape s = unet_conv();
  const std::vector<float> dy = values(kActivation, 7), w = values(int64_t(s.k) * s.col_rows(), 8);
  std::vector<float> dx(kActivation), ws(cpu().conv2d_workspace_floats(s));
  for (auto _ : state) {
    cpu().conv2d_backward_data(dy.data(), w.data(), dx.data(), s, ws.data());
    benchmark::DoNotOptimize(dx.data());
  }
  set_traffic(state, 2 * kActivation + int64_t(w.size()), conv_flops(s));
}
BENCHMARK(BM_cpu_conv2d_backward_data_4x64x160x160_k64_3x3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_cpu_conv2d_backward_weight_4x64x160x160_k64_3x3(benchmark::State& state) {
  const ich::Conv2dShape s = unet_conv();
  const std::vector<float> x = values(kActivation, 9), dy = values(kActivation, 10);
  std::vector<float> dw(size_t(s.k) * s.col_rows()), ws(cpu().conv2d_workspace_floats(s));
  for (auto _ : state) {
    cpu().conv2d_backward_weight(x.data(), dy.data(), dw.data(), s, ws.data());
    benchmark::DoNotOptimize(dw.data());
  }
  set_traffic(state, 2 * kActivation + int64_t(dw.size()), conv_flops(s));
}
BENCHMARK(BM_cpu_conv2d_backward_weight_4x64x160x160_k64_3x3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The U-Net's 3x3 convolutions (batch 4, c -> c channels at side x side), im2col and Winograd
// side by side whatever ICH_CONV_ALGO says:
//   ich_bench --benchmark_filter='BM_cpu_conv3x3'
// GFLOP/s counts the direct convolution's multiply-adds for both (effective rate).
// direction: 0 forward, 1 backward data, 2 backward weight.
void run_conv3x3(benchmark::State& state, int c, int k, int side, int direction, bool winograd) {
  const bool backward_data = direction == 1;
  ich::Conv2dShape s;
  s.n = kBatch, s.c = c, s.k = k, s.h = s.w = side;
  s.kh = s.kw = 3, s.pad_h = s.pad_w = 1, s.stride_h = s.stride_w = 1;
  ich::cpu::set_conv_algo(winograd ? ich::cpu::ConvAlgo::winograd : ich::cpu::ConvAlgo::im2col);
  const int64_t x_size = int64_t(s.n) * s.c * s.h * s.w, y_size = int64_t(s.n) * s.k * s.h * s.w;
  const int64_t act = std::max(x_size, y_size);
  const std::vector<float> in = values(backward_data ? y_size : x_size, 4);
  const std::vector<float> w = values(int64_t(s.k) * s.col_rows(), 5);
  const std::vector<float> bias = values(s.k, 6);
  std::vector<float> out(backward_data ? x_size : y_size), ws(cpu().conv2d_workspace_floats(s));
  const std::vector<float> dy = direction == 2 ? values(y_size, 7) : std::vector<float>();
  std::vector<float> dw(direction == 2 ? w.size() : 0);
  for (auto _ : state) {
    if (direction == 2) {
      cpu().conv2d_backward_weight(in.data(), dy.data(), dw.data(), s, ws.data());
      benchmark::DoNotOptimize(dw.data());
    } else if (backward_data) {
      cpu().conv2d_backward_data(in.data(), w.data(), out.data(), s, ws.data());
    } else {
      cpu().conv2d_forward(in.data(), w.data(), bias.data(), out.data(), s, ws.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
  ich::cpu::clear_conv_algo_override();
  set_traffic(state, 2 * act + int64_t(w.size()), conv_flops(s));
}

void BM_cpu_conv3x3(benchmark::State& state) {
  const int c = static_cast<int>(state.range(0));
  run_conv3x3(state, c, c, static_cast<int>(state.range(1)), static_cast<int>(state.range(2)),
              state.range(3) != 0);
}
BENCHMARK(BM_cpu_conv3x3)
    ->ArgNames({"c", "side", "bwd_data", "winograd"})
    ->ArgsProduct({{64}, {160}, {0, 1}, {0, 1}})
    ->ArgsProduct({{128}, {80}, {0, 1}, {0, 1}})
    ->ArgsProduct({{256}, {40, 20}, {0, 1}, {0, 1}})
    ->ArgsProduct({{16, 32}, {160}, {0}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The weight gradient (dw from x and dy), the same way, on the shapes of widths 16 and 64:
//   ich_bench --benchmark_filter='BM_cpu_conv3x3_wgrad'
void BM_cpu_conv3x3_wgrad(benchmark::State& state) {
  const int c = static_cast<int>(state.range(0));
  run_conv3x3(state, c, c, static_cast<int>(state.range(1)), 2, state.range(2) != 0);
}
BENCHMARK(BM_cpu_conv3x3_wgrad)
    ->ArgNames({"c", "side", "winograd"})
    ->ArgsProduct({{16}, {160}, {0, 1}})
    ->ArgsProduct({{32}, {80}, {0, 1}})
    ->ArgsProduct({{64}, {160, 40}, {0, 1}})
    ->ArgsProduct({{128}, {80}, {0, 1}})
    ->ArgsProduct({{256}, {40, 20}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The U-Net's first (1 -> 64) and last (64 -> 1) convolutions at 160x160, which auto leaves to
// im2col (fewer than 16 channels on one side).
void BM_cpu_conv3x3_ck(benchmark::State& state) {
  run_conv3x3(state, static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), kSide,
              static_cast<int>(state.range(2)), state.range(3) != 0);
}
BENCHMARK(BM_cpu_conv3x3_ck)
    ->ArgNames({"c", "k", "direction", "winograd"})  // 0 forward, 1 bwd data, 2 bwd weight
    ->Args({1, 64, 0, 0})
    ->Args({1, 64, 0, 1})
    ->Args({1, 64, 1, 0})
    ->Args({1, 64, 1, 1})
    ->Args({64, 1, 0, 0})
    ->Args({64, 1, 0, 1})
    ->Args({64, 1, 1, 0})
    ->Args({64, 1, 1, 1})
    ->Args({1, 64, 2, 0})
    ->Args({1, 64, 2, 1})
    ->Args({64, 1, 2, 0})
    ->Args({64, 1, 2, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_cpu_bias_grad_4x64x160x160(benchmark::State& state) {
  const std::vector<float> dy = values(kActivation, 11);
  std::vector<float> db(kChannels);
  for (auto _ : state) {
    cpu().bias_grad(dy.data(), db.data(), kBatch, kChannels, kPlane);
    benchmark::DoNotOptimize(db.data());
  }
  set_traffic(state, kActivation);
}
BENCHMARK(BM_cpu_bias_grad_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- batch norm, pooling, upsampling

void BM_cpu_batch_norm2d_forward_train_4x64x160x160(benchmark::State& state) {
  const std::vector<float> x = values(kActivation, 12), gamma = values(kChannels, 13),
                           beta = values(kChannels, 14);
  std::vector<float> y(kActivation), rm(kChannels, 0.f), rv(kChannels, 1.f), sm(kChannels),
      si(kChannels);
  for (auto _ : state) {
    cpu().batch_norm2d_forward_train(x.data(), y.data(), gamma.data(), beta.data(), rm.data(),
                                     rv.data(), sm.data(), si.data(), kBatch, kChannels, kPlane,
                                     0.1f, 1e-5f);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 2 * kActivation);
}
BENCHMARK(BM_cpu_batch_norm2d_forward_train_4x64x160x160)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_cpu_batch_norm2d_backward_4x64x160x160(benchmark::State& state) {
  const std::vector<float> x = values(kActivation, 15), dy = values(kActivation, 16),
                           gamma = values(kChannels, 17);
  const std::vector<float> mean(kChannels, 0.f), invstd(kChannels, 1.7f);
  std::vector<float> dx(kActivation), dgamma(kChannels), dbeta(kChannels);
  for (auto _ : state) {
    cpu().batch_norm2d_backward(dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(),
                                dx.data(), dgamma.data(), dbeta.data(), kBatch, kChannels, kPlane);
    benchmark::DoNotOptimize(dx.data());
  }
  set_traffic(state, 3 * kActivation);
}
BENCHMARK(BM_cpu_batch_norm2d_backward_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

ich::Pool2dShape unet_pool() {
  ich::Pool2dShape s;
  s.n = kBatch, s.c = kChannels, s.h = kSide, s.w = kSide;
  return s;  // 2x2, stride 2
}

void BM_cpu_max_pool2d_forward_4x64x160x160(benchmark::State& state) {
  const ich::Pool2dShape s = unet_pool();
  const std::vector<float> x = values(kActivation, 18);
  std::vector<float> y(kActivation / 4);
  std::vector<int32_t> argmax(kActivation / 4);
  for (auto _ : state) {
    cpu().max_pool2d_forward(x.data(), y.data(), argmax.data(), s);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, kActivation + 2 * (kActivation / 4));
}
BENCHMARK(BM_cpu_max_pool2d_forward_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_max_pool2d_backward_4x64x160x160(benchmark::State& state) {
  const ich::Pool2dShape s = unet_pool();
  const std::vector<float> x = values(kActivation, 19), dy = values(kActivation / 4, 20);
  std::vector<float> y(kActivation / 4), dx(kActivation);
  std::vector<int32_t> argmax(kActivation / 4);
  cpu().max_pool2d_forward(x.data(), y.data(), argmax.data(), s);
  for (auto _ : state) {
    cpu().max_pool2d_backward(dy.data(), argmax.data(), dx.data(), s);
    benchmark::DoNotOptimize(dx.data());
  }
  set_traffic(state, kActivation + 2 * (kActivation / 4));
}
BENCHMARK(BM_cpu_max_pool2d_backward_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_upsample_bilinear2d_forward_4x64x80x80_to_160(benchmark::State& state) {
  const int half = kSide / 2;
  const std::vector<float> x = values(kActivation / 4, 21);
  std::vector<float> y(kActivation);
  for (auto _ : state) {
    cpu().upsample_bilinear2d_forward(x.data(), y.data(), kBatch, kChannels, half, half, kSide,
                                      kSide, true);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, kActivation / 4 + kActivation);
}
BENCHMARK(BM_cpu_upsample_bilinear2d_forward_4x64x80x80_to_160)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_cpu_upsample_bilinear2d_backward_4x64x80x80_to_160(benchmark::State& state) {
  const int half = kSide / 2;
  const std::vector<float> dy = values(kActivation, 22);
  std::vector<float> dx(kActivation / 4);
  for (auto _ : state) {
    cpu().upsample_bilinear2d_backward(dy.data(), dx.data(), kBatch, kChannels, half, half, kSide,
                                       kSide, true);
    benchmark::DoNotOptimize(dx.data());
  }
  set_traffic(state, kActivation / 4 + kActivation);
}
BENCHMARK(BM_cpu_upsample_bilinear2d_backward_4x64x80x80_to_160)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- elementwise, activations, dropout, concat, reductions

void BM_cpu_relu_forward_4x64x160x160(benchmark::State& state) {
  const std::vector<float> x = values(kActivation, 23);
  std::vector<float> y(kActivation);
  for (auto _ : state) {
    cpu().relu_forward(x.data(), y.data(), kActivation);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 2 * kActivation);
}
BENCHMARK(BM_cpu_relu_forward_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_sigmoid_forward_4x64x160x160(benchmark::State& state) {
  const std::vector<float> x = values(kActivation, 24);
  std::vector<float> y(kActivation);
  for (auto _ : state) {
    cpu().sigmoid_forward(x.data(), y.data(), kActivation);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 2 * kActivation);
}
BENCHMARK(BM_cpu_sigmoid_forward_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_add_4x64x160x160(benchmark::State& state) {
  const std::vector<float> a = values(kActivation, 25), b = values(kActivation, 26);
  std::vector<float> y(kActivation);
  for (auto _ : state) {
    cpu().add(a.data(), b.data(), y.data(), kActivation);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 3 * kActivation, double(kActivation));
}
BENCHMARK(BM_cpu_add_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_axpy_4x64x160x160(benchmark::State& state) {
  const std::vector<float> x = values(kActivation, 27);
  std::vector<float> y(kActivation, 0.f);
  for (auto _ : state) {
    cpu().axpy(1e-3f, x.data(), y.data(), kActivation);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 3 * kActivation, 2.0 * double(kActivation));
}
BENCHMARK(BM_cpu_axpy_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_sum_4x64x160x160(benchmark::State& state) {
  const std::vector<float> x = values(kActivation, 28);
  float out = 0.f;
  for (auto _ : state) {
    cpu().sum(x.data(), kActivation, &out);
    benchmark::DoNotOptimize(out);
  }
  set_traffic(state, kActivation, double(kActivation));
}
BENCHMARK(BM_cpu_sum_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_dropout2d_forward_4x64x160x160(benchmark::State& state) {
  const std::vector<float> x = values(kActivation, 29);
  std::vector<float> y(kActivation), mask(kBatch * kChannels);
  uint64_t offset = 0;
  for (auto _ : state) {
    cpu().dropout2d_forward(x.data(), y.data(), mask.data(), kBatch, kChannels, kPlane, 0.4f, 1,
                            offset);
    offset += kBatch * kChannels;
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 2 * kActivation);
}
BENCHMARK(BM_cpu_dropout2d_forward_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_concat_channels_4x128x160x160(benchmark::State& state) {
  const std::vector<float> a = values(kActivation, 30), b = values(kActivation, 31);
  std::vector<float> y(2 * kActivation);
  for (auto _ : state) {
    cpu().concat_channels(a.data(), b.data(), y.data(), kBatch, kChannels, kChannels, kPlane);
    benchmark::DoNotOptimize(y.data());
  }
  set_traffic(state, 4 * kActivation);
}
BENCHMARK(BM_cpu_concat_channels_4x128x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cpu_uniform_4x64x160x160(benchmark::State& state) {
  std::vector<float> x(kActivation);
  uint64_t offset = 0;
  for (auto _ : state) {
    cpu().uniform(x.data(), kActivation, 42, offset, -1.f, 1.f);
    offset += kActivation;
    benchmark::DoNotOptimize(x.data());
  }
  set_traffic(state, kActivation);
}
BENCHMARK(BM_cpu_uniform_4x64x160x160)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- losses on the network's output (4, 1, 160, 160), and Adam over a U-Net's parameters

void BM_cpu_soft_dice_forward_backward_4x1x160x160(benchmark::State& state) {
  const int64_t n = kBatch * kPlane;
  const std::vector<float> p = values(n, 32, 0.f, 1.f), t = values(n, 33, 0.f, 1.f);
  std::vector<float> dp(n);
  float stats[2], loss;
  const float dloss = 1.f;
  for (auto _ : state) {
    cpu().soft_dice_forward(p.data(), t.data(), n, 1.f, stats, &loss);
    cpu().soft_dice_backward(p.data(), t.data(), n, 1.f, stats, &dloss, dp.data());
    benchmark::DoNotOptimize(dp.data());
  }
  set_traffic(state, 5 * n);
}
BENCHMARK(BM_cpu_soft_dice_forward_backward_4x1x160x160)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_cpu_bce_forward_backward_4x1x160x160(benchmark::State& state) {
  const int64_t n = kBatch * kPlane;
  const std::vector<float> p = values(n, 34, 0.01f, 0.99f), t = values(n, 35, 0.f, 1.f);
  std::vector<float> dp(n);
  float loss;
  const float dloss = 1.f;
  for (auto _ : state) {
    cpu().bce_forward(p.data(), t.data(), n, &loss);
    cpu().bce_backward(p.data(), t.data(), n, &dloss, dp.data());
    benchmark::DoNotOptimize(dp.data());
  }
  set_traffic(state, 5 * n);
}
BENCHMARK(BM_cpu_bce_forward_backward_4x1x160x160)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_cpu_adam_step_7_8M(benchmark::State& state) {
  const int64_t n = 7'800'000;  // about the parameters of the paper's U-Net (64-128-256)
  std::vector<float> param = values(n, 36), m(n, 0.f), v(n, 0.f);
  const std::vector<float> grad = values(n, 37, -1e-2f, 1e-2f);
  ich::AdamParams hp;
  hp.weight_decay = 1e-4f;
  for (auto _ : state) {
    cpu().adam_step(param.data(), grad.data(), m.data(), v.data(), n, hp);
    ++hp.step;
    benchmark::DoNotOptimize(param.data());
  }
  set_traffic(state, 7 * n);  // read param, grad, m, v; write param, m, v
}
BENCHMARK(BM_cpu_adam_step_7_8M)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
