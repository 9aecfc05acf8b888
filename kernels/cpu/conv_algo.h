// Which algorithm the CPU backend's 3x3 / stride 1 / pad 1 convolutions use (forward, and
// backward data, which runs as a forward convolution at stride 1; see conv2d.cpp; and the
// weight gradient):
//   im2col    im2col + GEMM for every convolution (the readable baseline)
//   winograd  Winograd F(4x4, 3x3) for every eligible convolution (conv2d_winograd.cpp)
//   auto      Winograd where eligible and measured faster (both channel counts at least
//             kWinogradMinChannels), im2col elsewhere
// The process-wide setting comes from ICH_CONV_ALGO, read once, on first use (the CPU
// backend's constructor asks, so a bad value fails when the backend is created); tests and
// benchmarks override it with set_conv_algo. The weight gradient has its own threshold under
// auto (kWinogradWeightMinChannels).
#pragma once

#include "kernels/backend.h"

namespace ich::cpu {

enum class ConvAlgo { automatic, im2col, winograd };

// "auto" | "im2col" | "winograd"; anything else throws ich::Error naming the valid values.
ConvAlgo parse_conv_algo(const char* value);
const char* conv_algo_name(ConvAlgo algo);

// The override if one is set, else ICH_CONV_ALGO (unset: auto).
ConvAlgo conv_algo();
void set_conv_algo(ConvAlgo algo);
void clear_conv_algo_override();  // back to ICH_CONV_ALGO

// Below this many input or output channels the transforms cost more than the GEMM saves
// (measured, docs/PERFORMANCE.md "Winograd").
constexpr int kWinogradMinChannels = 16;
// The same for the weight gradient: at 16 channels (16 @ 160x160, batch 4, 2 threads) Winograd's
// was already faster than im2col's, 1.3x (docs/PERFORMANCE.md "Weight gradient"); below 16 (the
// U-Net's first and last layers) not measured, im2col kept.
constexpr int kWinogradWeightMinChannels = 16;

// 3x3 kernel, stride 1, pad 1 (output the size of the input).
bool winograd_eligible(const Conv2dShape& s);
// Eligible and chosen by the current setting.
bool use_winograd(const Conv2dShape& s);
// The same for the weight gradient (conv2d_backward_weight).
bool use_winograd_weight(const Conv2dShape& s);

// Floats of workspace winograd_forward needs: U (36 k c) + per-thread V, M and scratch.
size_t winograd_workspace_floats(const Conv2dShape& s);
// y (n, k, h, w) = conv(x (n, c, h, w), w (k, c, 3, 3)) + bias, through F(4x4, 3x3).
// bias may be null. Results do not depend on the number of threads.
void winograd_forward(const float* x, const float* w, const float* bias, float* y,
                      const Conv2dShape& s, float* workspace);

// Floats of workspace winograd_backward_weight needs: partial M's (2 to 8 of 36 k c, fixed by
// the shape) and per thread V and Z of one block of tiles and scratch.
size_t winograd_backward_weight_workspace_floats(const Conv2dShape& s);
// dw (k, c, 3, 3) = sum over the batch of the gradient of conv(x, w) for dy (n, k, h, w), through
// F(4x4, 3x3): dw = G^T [sum over tiles (A dY A^T) (.) (B^T d B)] G. Overwrites dw. Results do not
// depend on the number of threads.
void winograd_backward_weight(const float* x, const float* dy, float* dw, const Conv2dShape& s,
                              float* workspace);

}  // namespace ich::cpu
