// The CPU's two algorithms for the U-Net's 3x3 convolutions (batch 4, c -> k channels at
// side x side), im2col + GEMM and Winograd F(4x4, 3x3), side by side whatever ICH_CONV_ALGO
// says, on the op table's conv2d case (tests/ops):
//   ich_bench --benchmark_filter='BM_cpu_conv3x3'
// GFLOP/s counts the direct convolution's multiply-adds for both (effective rate).
// direction: 0 forward, 1 backward data, 2 backward weight.
#include <benchmark/benchmark.h>

#include "bench/bench_common.h"
#include "kernels/cpu/conv_algo.h"
#include "ops/op_case.h"

namespace {

namespace ops = ich::test::ops;

void run_conv3x3(benchmark::State& state, int c, int k, int side, int direction, bool winograd) {
  const ops::ConvPass pass = direction == 0   ? ops::ConvPass::forward
                             : direction == 1 ? ops::ConvPass::backward_data
                                              : ops::ConvPass::backward_weight;
  // Before the case asks for its workspace: its size depends on the algorithm.
  ich::cpu::set_conv_algo(winograd ? ich::cpu::ConvAlgo::winograd : ich::cpu::ConvAlgo::im2col);
  const ich::Conv2dShape s = ops::conv_shape(ops::kBatch, c, side, side, k, 3, 3, 1, 1, 1, 1);
  ich::bench::run_op_case(state, ich::bench::cpu(),
                          ops::conv2d_case(s, pass, pass == ops::ConvPass::forward, 4), false);
  ich::cpu::clear_conv_algo_override();
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
  run_conv3x3(state, static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), ops::kSide,
              static_cast<int>(state.range(2)), state.range(3) != 0);
}
BENCHMARK(BM_cpu_conv3x3_ck)
    ->ArgNames({"c", "k", "direction", "winograd"})  // 0 forward, 1 bwd data, 2 bwd weight
    ->ArgsProduct({{1}, {64}, {0, 1, 2}, {0, 1}})
    ->ArgsProduct({{64}, {1}, {0, 1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
