// Google Benchmark cases for the convolution side of the CUDA backend on the GPU (cuda:0):
// im2col / col2im, conv2d forward / backward-data / backward-weight (im2col + our gemm or
// cuBLAS) next to cuDNN's convolution on the same shapes, bias, max-pool, bilinear
// upsampling and batch norm. The shapes are those of bench_cpu_primitives.cpp (batch 4,
// the paper's U-Net levels at 160x160 ICH patches), so the tables read side by side:
//   build/bench/ich_bench --benchmark_filter='cuda_conv|cuda_cudnn|cpu_conv'
// Each iteration's time is device time from CUDA events around the call (UseManualTime).
// bytes_per_second counts the bytes a call must read and write once; GFLOP/s counts
// multiply-adds as 2 FLOPs. Without a GPU every case is skipped with a message saying so.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/cuda_bench_common.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"
#if defined(ICH_HAVE_CUDNN)
#include "kernels/cuda/cudnn_peer.h"
#endif

namespace {

using ich::Backend;

constexpr int kBatch = 4, kSide = 160;

using ich::bench::DeviceFloats;
using ich::bench::gpu;
using ich::bench::run;

// The U-Net's 3x3 convolutions: {in channels, out channels, side}, batch 4.
#define ICH_UNET_CONV_ARGS \
  ->Args({1, 64, 160})->Args({64, 64, 160})->Args({128, 128, 80})->Args({256, 256, 40})

// A 3x3, pad 1, stride 1 convolution from the benchmark's arguments.
ich::Conv2dShape conv_of(const benchmark::State& state) {
  ich::Conv2dShape s;
  s.n = kBatch, s.c = int(state.range(0)), s.k = int(state.range(1));
  s.h = s.w = int(state.range(2));
  s.kh = s.kw = 3, s.pad_h = s.pad_w = 1, s.stride_h = s.stride_w = 1;
  return s;
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

// ---- im2col / col2im of one image (64 channels at 160x160, 3x3)

void BM_cuda_conv_im2col_64x160x160_3x3(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  ich::Conv2dShape s;
  s.c = 64, s.h = s.w = kSide, s.k = 64;
  const int64_t image = int64_t(s.c) * s.h * s.w, col = s.col_rows() * s.col_cols();
  DeviceFloats x(*be, image), columns(*be, col);
  run(
      state, *be, [&] { be->im2col(x.get(), columns.get(), s); }, image + col);
}
ICH_CUDA_BENCH(BM_cuda_conv_im2col_64x160x160_3x3);

void BM_cuda_conv_col2im_64x160x160_3x3(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  ich::Conv2dShape s;
  s.c = 64, s.h = s.w = kSide, s.k = 64;
  const int64_t image = int64_t(s.c) * s.h * s.w, col = s.col_rows() * s.col_cols();
  DeviceFloats x(*be, image), columns(*be, col);
  run(
      state, *be, [&] { be->col2im(columns.get(), x.get(), s); }, image + col);
}
ICH_CUDA_BENCH(BM_cuda_conv_col2im_64x160x160_3x3);

// ---- conv2d: im2col + gemm (cuBLAS or ours) against cuDNN

enum class ConvPass { forward, backward_data, backward_weight };

void conv_case(benchmark::State& state, ich::GemmImpl gemm, ConvPass pass) {
  Backend* be = gpu(state, gemm);
  if (!be) return;
  const ich::Conv2dShape s = conv_of(state);
  DeviceFloats x(*be, x_floats(s), 1), w(*be, w_floats(s), 2), bias(*be, s.k, 3);
  DeviceFloats y(*be, y_floats(s), 4), workspace(*be, int64_t(be->conv2d_workspace_floats(s)));
  const int64_t moved = x_floats(s) + w_floats(s) + y_floats(s);
  switch (pass) {
    case ConvPass::forward:
      run(
          state, *be,
          [&] { be->conv2d_forward(x.get(), w.get(), bias.get(), y.get(), s, workspace.get()); },
          moved, conv_flops(s));
      break;
    case ConvPass::backward_data:
      run(
          state, *be,
          [&] { be->conv2d_backward_data(y.get(), w.get(), x.get(), s, workspace.get()); }, moved,
          conv_flops(s));
      break;
    case ConvPass::backward_weight:
      run(
          state, *be,
          [&] { be->conv2d_backward_weight(x.get(), y.get(), w.get(), s, workspace.get()); }, moved,
          conv_flops(s));
      break;
  }
}

void BM_cuda_conv2d_forward_cublas(benchmark::State& state) {
  conv_case(state, ich::GemmImpl::cublas, ConvPass::forward);
}
void BM_cuda_conv2d_forward_ours(benchmark::State& state) {
  conv_case(state, ich::GemmImpl::ours, ConvPass::forward);
}
void BM_cuda_conv2d_backward_data_cublas(benchmark::State& state) {
  conv_case(state, ich::GemmImpl::cublas, ConvPass::backward_data);
}
void BM_cuda_conv2d_backward_data_ours(benchmark::State& state) {
  conv_case(state, ich::GemmImpl::ours, ConvPass::backward_data);
}
void BM_cuda_conv2d_backward_weight_cublas(benchmark::State& state) {
  conv_case(state, ich::GemmImpl::cublas, ConvPass::backward_weight);
}
void BM_cuda_conv2d_backward_weight_ours(benchmark::State& state) {
  conv_case(state, ich::GemmImpl::ours, ConvPass::backward_weight);
}
ICH_CUDA_BENCH(BM_cuda_conv2d_forward_cublas) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_conv2d_forward_ours) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_conv2d_backward_data_cublas) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_conv2d_backward_data_ours) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_conv2d_backward_weight_cublas) ICH_UNET_CONV_ARGS;
ICH_CUDA_BENCH(BM_cuda_conv2d_backward_weight_ours) ICH_UNET_CONV_ARGS;

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
  DeviceFloats workspace(*be, int64_t((ws_bytes + sizeof(float) - 1) / sizeof(float)));
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

// ---- bias, pooling, upsampling, batch norm at (4, 64, 160, 160)

constexpr int kChannels = 64;
constexpr int64_t kPlane = int64_t(kSide) * kSide;
constexpr int64_t kActivation = int64_t(kBatch) * kChannels * kPlane;

void BM_cuda_conv_bias_add_4x64x160x160(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats y(*be, kActivation), bias(*be, kChannels);
  run(
      state, *be, [&] { be->bias_add(y.get(), bias.get(), kBatch, kChannels, kPlane); },
      2 * kActivation);
}
ICH_CUDA_BENCH(BM_cuda_conv_bias_add_4x64x160x160);

void BM_cuda_conv_bias_grad_4x64x160x160(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  DeviceFloats dy(*be, kActivation), db(*be, kChannels);
  run(
      state, *be, [&] { be->bias_grad(dy.get(), db.get(), kBatch, kChannels, kPlane); },
      kActivation);
}
ICH_CUDA_BENCH(BM_cuda_conv_bias_grad_4x64x160x160);

ich::Pool2dShape unet_pool() {
  ich::Pool2dShape s;
  s.n = kBatch, s.c = kChannels, s.h = s.w = kSide;
  return s;  // 2x2, stride 2
}

void BM_cuda_conv_max_pool2d_forward_4x64x160x160(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  const ich::Pool2dShape s = unet_pool();
  const int64_t out = int64_t(s.n) * s.c * s.out_h() * s.out_w();
  DeviceFloats x(*be, kActivation), y(*be, out), argmax(*be, out);
  run(
      state, *be, [&] { be->max_pool2d_forward(x.get(), y.get(), argmax.as_int(), s); },
      kActivation + 2 * out);
}
ICH_CUDA_BENCH(BM_cuda_conv_max_pool2d_forward_4x64x160x160);

void BM_cuda_conv_max_pool2d_backward_4x64x160x160(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  const ich::Pool2dShape s = unet_pool();
  const int64_t out = int64_t(s.n) * s.c * s.out_h() * s.out_w();
  DeviceFloats x(*be, kActivation), y(*be, out), argmax(*be, out), dx(*be, kActivation);
  be->max_pool2d_forward(x.get(), y.get(), argmax.as_int(), s);  // a real argmax
  run(
      state, *be, [&] { be->max_pool2d_backward(y.get(), argmax.as_int(), dx.get(), s); },
      kActivation + 2 * out);
}
ICH_CUDA_BENCH(BM_cuda_conv_max_pool2d_backward_4x64x160x160);

void upsample_case(benchmark::State& state, bool backward) {
  Backend* be = gpu(state);
  if (!be) return;
  const int in = kSide / 2;
  const int64_t small = int64_t(kBatch) * kChannels * in * in;
  DeviceFloats x(*be, small), y(*be, kActivation);
  if (backward)
    run(
        state, *be,
        [&] {
          be->upsample_bilinear2d_backward(y.get(), x.get(), kBatch, kChannels, in, in, kSide,
                                           kSide, true);
        },
        small + kActivation);
  else
    run(
        state, *be,
        [&] {
          be->upsample_bilinear2d_forward(x.get(), y.get(), kBatch, kChannels, in, in, kSide, kSide,
                                          true);
        },
        small + kActivation);
}
void BM_cuda_conv_upsample_bilinear2d_forward_4x64x80x80_to_160(benchmark::State& state) {
  upsample_case(state, false);
}
void BM_cuda_conv_upsample_bilinear2d_backward_4x64x80x80_to_160(benchmark::State& state) {
  upsample_case(state, true);
}
ICH_CUDA_BENCH(BM_cuda_conv_upsample_bilinear2d_forward_4x64x80x80_to_160);
ICH_CUDA_BENCH(BM_cuda_conv_upsample_bilinear2d_backward_4x64x80x80_to_160);

// Batch norm: the U-Net levels as {channels, side}, batch 4.
#define ICH_UNET_BN_ARGS ->Args({64, 160})->Args({128, 80})->Args({256, 40})->Args({256, 20})

struct BatchNormBuffers {
  BatchNormBuffers(Backend& be, int c, int64_t total)
      : x(be, total, 1),
        y(be, total, 2),
        dy(be, total, 3),
        dx(be, total, 4),
        gamma(be, c, 5),
        beta(be, c, 6),
        running_mean(be, c, 7),
        running_var(be, c, 8),
        save_mean(be, c, 9),
        save_invstd(be, c, 10),
        dgamma(be, c, 11),
        dbeta(be, c, 12) {
    be.fill(running_var.get(), c, 1.0f);
  }
  DeviceFloats x, y, dy, dx, gamma, beta, running_mean, running_var, save_mean, save_invstd, dgamma,
      dbeta;
};

void BM_cuda_conv_batch_norm2d_forward_train(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  const int c = int(state.range(0));
  const int64_t hw = state.range(1) * state.range(1), total = kBatch * c * hw;
  BatchNormBuffers b(*be, c, total);
  run(
      state, *be,
      [&] {
        be->batch_norm2d_forward_train(b.x.get(), b.y.get(), b.gamma.get(), b.beta.get(),
                                       b.running_mean.get(), b.running_var.get(), b.save_mean.get(),
                                       b.save_invstd.get(), kBatch, c, hw, 0.1f, 1e-5f);
      },
      2 * total);
}
ICH_CUDA_BENCH(BM_cuda_conv_batch_norm2d_forward_train) ICH_UNET_BN_ARGS;

void BM_cuda_conv_batch_norm2d_forward_eval(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  const int c = int(state.range(0));
  const int64_t hw = state.range(1) * state.range(1), total = kBatch * c * hw;
  BatchNormBuffers b(*be, c, total);
  run(
      state, *be,
      [&] {
        be->batch_norm2d_forward_eval(b.x.get(), b.y.get(), b.gamma.get(), b.beta.get(),
                                      b.running_mean.get(), b.running_var.get(), kBatch, c, hw,
                                      1e-5f);
      },
      2 * total);
}
ICH_CUDA_BENCH(BM_cuda_conv_batch_norm2d_forward_eval) ICH_UNET_BN_ARGS;

void BM_cuda_conv_batch_norm2d_backward(benchmark::State& state) {
  Backend* be = gpu(state);
  if (!be) return;
  const int c = int(state.range(0));
  const int64_t hw = state.range(1) * state.range(1), total = kBatch * c * hw;
  BatchNormBuffers b(*be, c, total);
  be->batch_norm2d_forward_train(b.x.get(), b.y.get(), b.gamma.get(), b.beta.get(),
                                 b.running_mean.get(), b.running_var.get(), b.save_mean.get(),
                                 b.save_invstd.get(), kBatch, c, hw, 0.1f, 1e-5f);
  run(
      state, *be,
      [&] {
        be->batch_norm2d_backward(b.dy.get(), b.x.get(), b.gamma.get(), b.save_mean.get(),
                                  b.save_invstd.get(), b.dx.get(), b.dgamma.get(), b.dbeta.get(),
                                  kBatch, c, hw);
      },
      3 * total);
}
ICH_CUDA_BENCH(BM_cuda_conv_batch_norm2d_backward) ICH_UNET_BN_ARGS;

}  // namespace
