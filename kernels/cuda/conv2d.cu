// Convolution (cross-correlation, as PyTorch) from im2col / col2im and the backend's gemm
// (cuBLAS or our tiled SGEMM, per the backend's options), one image at a time through the
// caller's workspace of col_rows * col_cols floats, as caffe and kernels/cpu/conv2d.cpp:
//   forward          y_n (k, ohw)   = w (k, ckk) * col(x_n) (ckk, ohw)          (+ bias)
//   backward data    col (ckk, ohw) = w^T (ckk, k) * dy_n (k, ohw);  dx_n = col2im(col)
//   backward weight  dw (k, ckk)    = sum over n of dy_n (k, ohw) * col(x_n)^T (ohw, ckk)
// with ckk = c*kh*kw and ohw = out_h*out_w. Everything is issued on the backend's stream, so
// reusing the one workspace for every image is ordered without synchronisation.
// A 1x1 convolution with stride 1 and no padding has col(x_n) == x_n: it skips im2col and
// col2im and multiplies the image itself.
// No kernels of its own: the work is in im2col.cu, bias.cu and gemm.cu.
#include "kernels/cuda/conv_kernels.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

bool is_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
         s.pad_w == 0;
}

// ---- launchers

void conv2d_forward(CudaBackend& backend, const float* x, const float* w, const float* bias,
                    float* y, const Conv2dShape& s, float* workspace) {
  const LaunchContext& ctx = backend.launch_context();
  const int ckk = static_cast<int>(s.col_rows());
  const int ohw = static_cast<int>(s.col_cols());
  const int64_t x_image = int64_t(s.c) * s.h * s.w;  // (c, h, w)
  const int64_t y_image = int64_t(s.k) * ohw;        // (k, oh, ow)
  const bool pointwise = is_pointwise(s);
  for (int img = 0; img < s.n; ++img) {
    const float* col = x + img * x_image;
    if (!pointwise) {
      im2col(ctx, x + img * x_image, workspace, s);
      col = workspace;
    }
    backend.gemm(false, false, s.k, ohw, ckk, 1.0f, w, ckk, col, ohw, 0.0f, y + img * y_image, ohw);
  }
  if (bias != nullptr) bias_add(ctx, y, bias, s.n, s.k, ohw);
}

void conv2d_backward_data(CudaBackend& backend, const float* dy, const float* w, float* dx,
                          const Conv2dShape& s, float* workspace) {
  const LaunchContext& ctx = backend.launch_context();
  const int ckk = static_cast<int>(s.col_rows());
  const int ohw = static_cast<int>(s.col_cols());
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
  const bool pointwise = is_pointwise(s);
  for (int img = 0; img < s.n; ++img) {
    float* col = pointwise ? dx + img * x_image : workspace;
    backend.gemm(true, false, ckk, ohw, s.k, 1.0f, w, ckk, dy + img * y_image, ohw, 0.0f, col, ohw);
    if (!pointwise) col2im(ctx, workspace, dx + img * x_image, s);
  }
}

void conv2d_backward_weight(CudaBackend& backend, const float* x, const float* dy, float* dw,
                            const Conv2dShape& s, float* workspace) {
  const LaunchContext& ctx = backend.launch_context();
  const int ckk = static_cast<int>(s.col_rows());
  const int ohw = static_cast<int>(s.col_cols());
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
  const bool pointwise = is_pointwise(s);
  for (int img = 0; img < s.n; ++img) {
    const float* col = x + img * x_image;
    if (!pointwise) {
      im2col(ctx, x + img * x_image, workspace, s);
      col = workspace;
    }
    // The first image overwrites dw, the rest accumulate into it (in image order).
    backend.gemm(false, true, s.k, ckk, ohw, 1.0f, dy + img * y_image, ohw, col, ohw,
                 img == 0 ? 0.0f : 1.0f, dw, ckk);
  }
}

}  // namespace

// ---- CudaBackend members

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

}  // namespace ich::ICH_CUDA_NS
