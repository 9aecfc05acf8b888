// Launchers of the convolution-side kernel families of the CUDA backend:
//   im2col.cu     im2col, col2im (a gather: every pixel sums its own column entries)
//   conv2d.cu     conv2d forward / backward-data / backward-weight from im2col + gemm
//   bias.cu       bias_add, bias_grad (one block per channel)
//   pool2d.cu     max_pool2d forward / backward (backward is a gather over windows)
//   upsample.cu   upsample_bilinear2d forward / backward (backward is a gather)
//   batchnorm.cu  batch_norm2d forward (train, eval) / backward (one block per channel)
// The CudaBackend members that validate arguments and call these live in
// cuda_backend_conv.cpp. A launcher assumes validated arguments, issues its kernels on
// ctx.stream in order, never allocates, and checks each launch. Layouts are those of
// kernels/backend.h (NCHW, contiguous).
#pragma once

#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cuda/runtime.h"

namespace ich::ICH_CUDA_NS {

class CudaBackend;

// ---- im2col.cu: one image, x (c, h, w) <-> col (c*kh*kw, out_h*out_w)
void im2col(const LaunchContext& ctx, const float* x, float* col, const Conv2dShape& s);
void col2im(const LaunchContext& ctx, const float* col, float* x, const Conv2dShape& s);

// ---- conv2d.cu: the backend's gemm on its stream, workspace of col_rows*col_cols floats
void conv2d_forward(CudaBackend& backend, const float* x, const float* w, const float* bias,
                    float* y, const Conv2dShape& s, float* workspace);
void conv2d_backward_data(CudaBackend& backend, const float* dy, const float* w, float* dx,
                          const Conv2dShape& s, float* workspace);
void conv2d_backward_weight(CudaBackend& backend, const float* x, const float* dy, float* dw,
                            const Conv2dShape& s, float* workspace);

// ---- bias.cu: y (n, c, hw) += bias (c); db (c) = sum of dy over n and hw
void bias_add(const LaunchContext& ctx, float* y, const float* bias, int n, int c, int64_t hw);
void bias_grad(const LaunchContext& ctx, const float* dy, float* db, int n, int c, int64_t hw);

// ---- pool2d.cu
void max_pool2d_forward(const LaunchContext& ctx, const float* x, float* y, int32_t* argmax,
                        const Pool2dShape& s);
void max_pool2d_backward(const LaunchContext& ctx, const float* dy, const int32_t* argmax,
                         float* dx, const Pool2dShape& s);

// ---- upsample.cu
void upsample_bilinear2d_forward(const LaunchContext& ctx, const float* x, float* y, int n, int c,
                                 int h, int w, int oh, int ow, bool align_corners);
void upsample_bilinear2d_backward(const LaunchContext& ctx, const float* dy, float* dx, int n,
                                  int c, int h, int w, int oh, int ow, bool align_corners);

// ---- batchnorm.cu
void batch_norm2d_forward_train(const LaunchContext& ctx, const float* x, float* y,
                                const float* gamma, const float* beta, float* running_mean,
                                float* running_var, float* save_mean, float* save_invstd, int n,
                                int c, int64_t hw, float momentum, float eps);
void batch_norm2d_forward_eval(const LaunchContext& ctx, const float* x, float* y,
                               const float* gamma, const float* beta, const float* running_mean,
                               const float* running_var, int n, int c, int64_t hw, float eps);
void batch_norm2d_backward(const LaunchContext& ctx, const float* dy, const float* x,
                           const float* gamma, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, int n, int c, int64_t hw);

}  // namespace ich::ICH_CUDA_NS
