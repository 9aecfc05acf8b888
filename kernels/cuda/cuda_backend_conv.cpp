// The CudaBackend members of the convolution side: im2col / col2im, conv2d, bias, max
// pooling, bilinear upsampling and batch norm. Each checks its arguments with the same rules
// as the CPU reference (so a caller gets the same error on every backend) and calls the
// launchers of kernels/cuda/conv_kernels.h on the backend's stream. Nothing here waits for
// the device.
#include <limits>

#include "core/error.h"
#include "kernels/cuda/conv_kernels.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

void check_conv_shape(const Conv2dShape& s, const char* op) {
  ICH_CHECK(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.k > 0 && s.kh > 0 && s.kw > 0,
            op << ": sizes must be positive, got n=" << s.n << " c=" << s.c << " h=" << s.h
               << " w=" << s.w << " k=" << s.k << " kernel " << s.kh << "x" << s.kw);
  ICH_CHECK(s.pad_h >= 0 && s.pad_w >= 0 && s.stride_h > 0 && s.stride_w > 0,
            op << ": padding must be >= 0 and stride > 0, got pad " << s.pad_h << "x" << s.pad_w
               << " stride " << s.stride_h << "x" << s.stride_w);
  ICH_CHECK(s.h + 2 * s.pad_h >= s.kh && s.w + 2 * s.pad_w >= s.kw,
            op << ": kernel " << s.kh << "x" << s.kw << " is larger than the padded input "
               << s.h + 2 * s.pad_h << "x" << s.w + 2 * s.pad_w);
  // The gemm takes int sizes and leading dimensions.
  ICH_CHECK(s.col_rows() <= std::numeric_limits<int>::max() &&
                s.col_cols() <= std::numeric_limits<int>::max(),
            op << ": the im2col matrix " << s.col_rows() << "x" << s.col_cols()
               << " has a side longer than a gemm can take (2^31 - 1)");
}

void check_pool_shape(const Pool2dShape& s, const char* op) {
  ICH_CHECK(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.kh > 0 && s.kw > 0,
            op << ": sizes must be positive, got n=" << s.n << " c=" << s.c << " h=" << s.h
               << " w=" << s.w << " kernel " << s.kh << "x" << s.kw);
  ICH_CHECK(s.stride_h > 0 && s.stride_w > 0,
            op << ": stride must be > 0, got " << s.stride_h << "x" << s.stride_w);
  // PyTorch's rule; it also guarantees every window holds at least one real element.
  ICH_CHECK(s.pad_h >= 0 && s.pad_w >= 0 && s.pad_h <= s.kh / 2 && s.pad_w <= s.kw / 2,
            op << ": padding " << s.pad_h << "x" << s.pad_w
               << " must be >= 0 and at most half the kernel " << s.kh << "x" << s.kw);
  ICH_CHECK(s.h + 2 * s.pad_h >= s.kh && s.w + 2 * s.pad_w >= s.kw,
            op << ": kernel " << s.kh << "x" << s.kw << " is larger than the padded input "
               << s.h + 2 * s.pad_h << "x" << s.w + 2 * s.pad_w);
  ICH_CHECK(int64_t(s.h) * s.w <= std::numeric_limits<int32_t>::max(),
            op << ": a " << s.h << "x" << s.w << " plane overflows the int32 argmax");
}

void check_upsample(int n, int c, int h, int w, int oh, int ow, const char* op) {
  ICH_CHECK(n > 0 && c > 0 && h > 0 && w > 0,
            op << ": input sizes must be positive, got " << n << "x" << c << "x" << h << "x" << w);
  ICH_CHECK(oh > 0 && ow > 0, op << ": output size must be positive, got " << oh << "x" << ow);
}

void check_bn_sizes(int n, int c, int64_t hw, const char* op) {
  ICH_CHECK(n > 0 && c > 0 && hw > 0,
            op << ": sizes must be positive, got n=" << n << " c=" << c << " hw=" << hw);
}

}  // namespace

// ---- im2col / col2im

void CudaBackend::im2col(const float* x, float* col, const Conv2dShape& s) {
  check_conv_shape(s, "im2col");
  ICH_CHECK(x != nullptr && col != nullptr, "im2col: null input or column buffer");
  ICH_CUDA_NS::im2col(launch_context(), x, col, s);
}

void CudaBackend::col2im(const float* col, float* x, const Conv2dShape& s) {
  check_conv_shape(s, "col2im");
  ICH_CHECK(x != nullptr && col != nullptr, "col2im: null image or column buffer");
  ICH_CUDA_NS::col2im(launch_context(), col, x, s);
}

// ---- convolution

size_t CudaBackend::conv2d_workspace_floats(const Conv2dShape& s) const {
  check_conv_shape(s, "conv2d_workspace_floats");
  return static_cast<size_t>(s.col_rows() * s.col_cols());
}

void CudaBackend::conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                                 const Conv2dShape& s, float* workspace) {
  check_conv_shape(s, "conv2d_forward");
  ICH_CHECK(x != nullptr && w != nullptr && y != nullptr && workspace != nullptr,
            "conv2d_forward: x, w, y and workspace must not be null (bias may be)");
  ICH_CUDA_NS::conv2d_forward(*this, x, w, bias, y, s, workspace);
}

void CudaBackend::conv2d_backward_data(const float* dy, const float* w, float* dx,
                                       const Conv2dShape& s, float* workspace) {
  check_conv_shape(s, "conv2d_backward_data");
  ICH_CHECK(dy != nullptr && w != nullptr && dx != nullptr && workspace != nullptr,
            "conv2d_backward_data: dy, w, dx and workspace must not be null");
  ICH_CUDA_NS::conv2d_backward_data(*this, dy, w, dx, s, workspace);
}

void CudaBackend::conv2d_backward_weight(const float* x, const float* dy, float* dw,
                                         const Conv2dShape& s, float* workspace) {
  check_conv_shape(s, "conv2d_backward_weight");
  ICH_CHECK(x != nullptr && dy != nullptr && dw != nullptr && workspace != nullptr,
            "conv2d_backward_weight: x, dy, dw and workspace must not be null");
  ICH_CUDA_NS::conv2d_backward_weight(*this, x, dy, dw, s, workspace);
}

// ---- bias

void CudaBackend::bias_add(float* y, const float* bias, int n, int c, int64_t hw) {
  ICH_CHECK(n >= 0 && c >= 0 && hw >= 0,
            "bias_add: sizes must be >= 0, got n=" << n << " c=" << c << " hw=" << hw);
  if (int64_t(n) * c * hw == 0) return;
  ICH_CHECK(y != nullptr && bias != nullptr, "bias_add: y and bias must not be null");
  ICH_CUDA_NS::bias_add(launch_context(), y, bias, n, c, hw);
}

void CudaBackend::bias_grad(const float* dy, float* db, int n, int c, int64_t hw) {
  ICH_CHECK(n >= 0 && c >= 0 && hw >= 0,
            "bias_grad: sizes must be >= 0, got n=" << n << " c=" << c << " hw=" << hw);
  if (c == 0) return;
  ICH_CHECK(db != nullptr, "bias_grad: db must not be null");
  ICH_CHECK(dy != nullptr || int64_t(n) * hw == 0, "bias_grad: dy must not be null");
  ICH_CUDA_NS::bias_grad(launch_context(), dy, db, n, c, hw);
}

// ---- max pooling

void CudaBackend::max_pool2d_forward(const float* x, float* y, int32_t* argmax,
                                     const Pool2dShape& s) {
  check_pool_shape(s, "max_pool2d_forward");
  ICH_CHECK(x != nullptr && y != nullptr && argmax != nullptr,
            "max_pool2d_forward: x, y and argmax must not be null");
  ICH_CUDA_NS::max_pool2d_forward(launch_context(), x, y, argmax, s);
}

void CudaBackend::max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx,
                                      const Pool2dShape& s) {
  check_pool_shape(s, "max_pool2d_backward");
  ICH_CHECK(dy != nullptr && argmax != nullptr && dx != nullptr,
            "max_pool2d_backward: dy, argmax and dx must not be null");
  ICH_CUDA_NS::max_pool2d_backward(launch_context(), dy, argmax, dx, s);
}

// ---- bilinear upsampling

void CudaBackend::upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w,
                                              int oh, int ow, bool align_corners) {
  check_upsample(n, c, h, w, oh, ow, "upsample_bilinear2d_forward");
  ICH_CHECK(x != nullptr && y != nullptr, "upsample_bilinear2d_forward: x and y must not be null");
  ICH_CUDA_NS::upsample_bilinear2d_forward(launch_context(), x, y, n, c, h, w, oh, ow,
                                           align_corners);
}

void CudaBackend::upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h,
                                               int w, int oh, int ow, bool align_corners) {
  check_upsample(n, c, h, w, oh, ow, "upsample_bilinear2d_backward");
  ICH_CHECK(dy != nullptr && dx != nullptr,
            "upsample_bilinear2d_backward: dy and dx must not be null");
  ICH_CUDA_NS::upsample_bilinear2d_backward(launch_context(), dy, dx, n, c, h, w, oh, ow,
                                            align_corners);
}

// ---- batch norm

void CudaBackend::batch_norm2d_forward_train(const float* x, float* y, const float* gamma,
                                             const float* beta, float* running_mean,
                                             float* running_var, float* save_mean,
                                             float* save_invstd, int n, int c, int64_t hw,
                                             float momentum, float eps) {
  check_bn_sizes(n, c, hw, "batch_norm2d_forward_train");
  ICH_CHECK(int64_t(n) * hw > 1,
            "batch_norm2d_forward_train: expected more than 1 value per channel in training, got n="
                << n << " hw=" << hw);
  ICH_CHECK(x != nullptr && y != nullptr && gamma != nullptr && beta != nullptr &&
                running_mean != nullptr && running_var != nullptr && save_mean != nullptr &&
                save_invstd != nullptr,
            "batch_norm2d_forward_train: every pointer argument is required");
  ICH_CHECK(eps > 0.0f, "batch_norm2d_forward_train: eps must be > 0, got " << eps);
  ICH_CHECK(momentum >= 0.0f && momentum <= 1.0f,
            "batch_norm2d_forward_train: momentum must be in [0, 1], got " << momentum);
  ICH_CUDA_NS::batch_norm2d_forward_train(launch_context(), x, y, gamma, beta, running_mean,
                                          running_var, save_mean, save_invstd, n, c, hw, momentum,
                                          eps);
}

void CudaBackend::batch_norm2d_forward_eval(const float* x, float* y, const float* gamma,
                                            const float* beta, const float* running_mean,
                                            const float* running_var, int n, int c, int64_t hw,
                                            float eps) {
  check_bn_sizes(n, c, hw, "batch_norm2d_forward_eval");
  ICH_CHECK(x != nullptr && y != nullptr && gamma != nullptr && beta != nullptr &&
                running_mean != nullptr && running_var != nullptr,
            "batch_norm2d_forward_eval: every pointer argument is required");
  ICH_CHECK(eps > 0.0f, "batch_norm2d_forward_eval: eps must be > 0, got " << eps);
  ICH_CUDA_NS::batch_norm2d_forward_eval(launch_context(), x, y, gamma, beta, running_mean,
                                         running_var, n, c, hw, eps);
}

void CudaBackend::batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                                        const float* save_mean, const float* save_invstd, float* dx,
                                        float* dgamma, float* dbeta, int n, int c, int64_t hw) {
  check_bn_sizes(n, c, hw, "batch_norm2d_backward");
  ICH_CHECK(dy != nullptr && x != nullptr && gamma != nullptr && save_mean != nullptr &&
                save_invstd != nullptr && dx != nullptr && dgamma != nullptr && dbeta != nullptr,
            "batch_norm2d_backward: every pointer argument is required");
  ICH_CUDA_NS::batch_norm2d_backward(launch_context(), dy, x, gamma, save_mean, save_invstd, dx,
                                     dgamma, dbeta, n, c, hw);
}

}  // namespace ich::ICH_CUDA_NS
