// The launchers that one convolution-side file of the CUDA backend calls from another:
//   im2col.cu     im2col, col2im (a gather: every pixel sums its own column entries)
//   bias.cu       bias_add, bias_grad (one block per channel)
// conv2d.cu builds the convolutions from them and the backend's gemm. Every other launcher is
// local to its .cu file, next to its kernels and the CudaBackend members that call it (as
// pool2d.cu, upsample.cu, batchnorm.cu). A launcher assumes validated arguments, issues its
// kernels on ctx.stream in order, never allocates, and checks each launch. Layouts are those of
// kernels/backend.h (NCHW, contiguous).
#pragma once

#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cuda/runtime.h"

namespace ich::ICH_CUDA_NS {

// ---- im2col.cu: one image, x (c, h, w) <-> col (c*kh*kw, out_h*out_w)
void im2col(const LaunchContext& ctx, const float* x, float* col, const Conv2dShape& s);
void col2im(const LaunchContext& ctx, const float* col, float* x, const Conv2dShape& s);

// ---- bias.cu: y (n, c, hw) += bias (c); db (c) = sum of dy over n and hw
void bias_add(const LaunchContext& ctx, float* y, const float* bias, int n, int c, int64_t hw);
void bias_grad(const LaunchContext& ctx, const float* dy, float* db, int n, int c, int64_t hw);

}  // namespace ich::ICH_CUDA_NS
