// The CudaBackend members of the convolution side: im2col / col2im, conv2d, bias, max
// pooling, bilinear upsampling and batch norm. Each checks its arguments with the rules of
// kernels/checks.h (so a caller gets the same error on every backend) and calls the
// launchers of kernels/cuda/conv_kernels.h on the backend's stream. Nothing here waits for
// the device.
#include "kernels/cuda/conv_kernels.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

// ---- im2col / col2im

void CudaBackend::im2col(const float* x, float* col, const Conv2dShape& s) {
  checks::im2col(x, col, s);
  ICH_CUDA_NS::im2col(launch_context(), x, col, s);
}

void CudaBackend::col2im(const float* col, float* x, const Conv2dShape& s) {
  checks::col2im(col, x, s);
  ICH_CUDA_NS::col2im(launch_context(), col, x, s);
}

// ---- convolution

size_t CudaBackend::conv2d_workspace_floats(const Conv2dShape& s) const {
  checks::conv_shape(s, "conv2d_workspace_floats");
  return static_cast<size_t>(s.col_rows() * s.col_cols());
}

void CudaBackend::conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                                 const Conv2dShape& s, float* workspace) {
  checks::conv2d_forward(x, w, y, s, workspace);
  ICH_CUDA_NS::conv2d_forward(*this, x, w, bias, y, s, workspace);
}

void CudaBackend::conv2d_backward_data(const float* dy, const float* w, float* dx,
                                       const Conv2dShape& s, float* workspace) {
  checks::conv2d_backward_data(dy, w, dx, s, workspace);
  ICH_CUDA_NS::conv2d_backward_data(*this, dy, w, dx, s, workspace);
}

void CudaBackend::conv2d_backward_weight(const float* x, const float* dy, float* dw,
                                         const Conv2dShape& s, float* workspace) {
  checks::conv2d_backward_weight(x, dy, dw, s, workspace);
  ICH_CUDA_NS::conv2d_backward_weight(*this, x, dy, dw, s, workspace);
}

// ---- bias

void CudaBackend::bias_add(float* y, const float* bias, int n, int c, int64_t hw) {
  checks::bias_add(y, bias, n, c, hw);
  if (int64_t(n) * c * hw == 0) return;
  ICH_CUDA_NS::bias_add(launch_context(), y, bias, n, c, hw);
}

void CudaBackend::bias_grad(const float* dy, float* db, int n, int c, int64_t hw) {
  checks::bias_grad(dy, db, n, c, hw);
  if (c == 0) return;
  ICH_CUDA_NS::bias_grad(launch_context(), dy, db, n, c, hw);
}

// ---- max pooling

void CudaBackend::max_pool2d_forward(const float* x, float* y, int32_t* argmax,
                                     const Pool2dShape& s) {
  checks::max_pool2d_forward(x, y, argmax, s);
  ICH_CUDA_NS::max_pool2d_forward(launch_context(), x, y, argmax, s);
}

void CudaBackend::max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx,
                                      const Pool2dShape& s) {
  checks::max_pool2d_backward(dy, argmax, dx, s);
  ICH_CUDA_NS::max_pool2d_backward(launch_context(), dy, argmax, dx, s);
}

// ---- bilinear upsampling

void CudaBackend::upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w,
                                              int oh, int ow, bool align_corners) {
  checks::upsample_bilinear2d_forward(x, y, n, c, h, w, oh, ow);
  ICH_CUDA_NS::upsample_bilinear2d_forward(launch_context(), x, y, n, c, h, w, oh, ow,
                                           align_corners);
}

void CudaBackend::upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h,
                                               int w, int oh, int ow, bool align_corners) {
  checks::upsample_bilinear2d_backward(dy, dx, n, c, h, w, oh, ow);
  ICH_CUDA_NS::upsample_bilinear2d_backward(launch_context(), dy, dx, n, c, h, w, oh, ow,
                                            align_corners);
}

// ---- batch norm

void CudaBackend::batch_norm2d_forward_train(const float* x, float* y, const float* gamma,
                                             const float* beta, float* running_mean,
                                             float* running_var, float* save_mean,
                                             float* save_invstd, int n, int c, int64_t hw,
                                             float momentum, float eps) {
  checks::batch_norm2d_forward_train(x, y, gamma, beta, running_mean, running_var, save_mean,
                                     save_invstd, n, c, hw, momentum, eps);
  ICH_CUDA_NS::batch_norm2d_forward_train(launch_context(), x, y, gamma, beta, running_mean,
                                          running_var, save_mean, save_invstd, n, c, hw, momentum,
                                          eps);
}

void CudaBackend::batch_norm2d_forward_eval(const float* x, float* y, const float* gamma,
                                            const float* beta, const float* running_mean,
                                            const float* running_var, int n, int c, int64_t hw,
                                            float eps) {
  checks::batch_norm2d_forward_eval(x, y, gamma, beta, running_mean, running_var, n, c, hw, eps);
  ICH_CUDA_NS::batch_norm2d_forward_eval(launch_context(), x, y, gamma, beta, running_mean,
                                         running_var, n, c, hw, eps);
}

void CudaBackend::batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                                        const float* save_mean, const float* save_invstd, float* dx,
                                        float* dgamma, float* dbeta, int n, int c, int64_t hw) {
  checks::batch_norm2d_backward(dy, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta, n, c, hw);
  ICH_CUDA_NS::batch_norm2d_backward(launch_context(), dy, x, gamma, save_mean, save_invstd, dx,
                                     dgamma, dbeta, n, c, hw);
}

}  // namespace ich::ICH_CUDA_NS
