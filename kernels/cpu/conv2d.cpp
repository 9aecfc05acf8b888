// Convolution (cross-correlation, as PyTorch) from im2col + GEMM, one image at a time
// through the caller's workspace of col_rows * col_cols floats:
//   forward          y_n (k, ohw)   = w (k, ckk) * col(x_n) (ckk, ohw)          (+ bias)
//   backward data    col (ckk, ohw) = w^T (ckk, k) * dy_n (k, ohw);  dx_n = col2im(col)
//   backward weight  dw (k, ckk)   += dy_n (k, ohw) * col(x_n)^T (ohw, ckk), summed over n
// The GEMMs run outside OpenMP regions (BLAS has its own threads); the batch loop is serial,
// which also fixes the order of the weight-gradient sum.
#include "kernels/cpu/cpu_backend.h"

namespace ich {

size_t CpuBackend::conv2d_workspace_floats(const Conv2dShape& s) const {
  checks::conv_shape(s, "conv2d_workspace_floats");
  return static_cast<size_t>(s.col_rows() * s.col_cols());
}

void CpuBackend::conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                                const Conv2dShape& s, float* workspace) {
  ICH_PROFILE_SCOPE("conv2d_forward");
  checks::conv2d_forward(x, w, y, s, workspace);
  const int ckk = static_cast<int>(s.col_rows());
  const int ohw = static_cast<int>(s.col_cols());
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
  for (int img = 0; img < s.n; ++img) {
    im2col(x + img * x_image, workspace, s);
    gemm(false, false, s.k, ohw, ckk, 1.0f, w, ckk, workspace, ohw, 0.0f, y + img * y_image, ohw);
  }
  if (bias != nullptr) bias_add(y, bias, s.n, s.k, ohw);
}

void CpuBackend::conv2d_backward_data(const float* dy, const float* w, float* dx,
                                      const Conv2dShape& s, float* workspace) {
  ICH_PROFILE_SCOPE("conv2d_backward_data");
  checks::conv2d_backward_data(dy, w, dx, s, workspace);
  const int ckk = static_cast<int>(s.col_rows());
  const int ohw = static_cast<int>(s.col_cols());
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
  for (int img = 0; img < s.n; ++img) {
    gemm(true, false, ckk, ohw, s.k, 1.0f, w, ckk, dy + img * y_image, ohw, 0.0f, workspace, ohw);
    col2im(workspace, dx + img * x_image, s);
  }
}

void CpuBackend::conv2d_backward_weight(const float* x, const float* dy, float* dw,
                                        const Conv2dShape& s, float* workspace) {
  ICH_PROFILE_SCOPE("conv2d_backward_weight");
  checks::conv2d_backward_weight(x, dy, dw, s, workspace);
  const int ckk = static_cast<int>(s.col_rows());
  const int ohw = static_cast<int>(s.col_cols());
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
  for (int img = 0; img < s.n; ++img) {
    im2col(x + img * x_image, workspace, s);
    // The first image overwrites dw, the rest accumulate into it.
    gemm(false, true, s.k, ckk, ohw, 1.0f, dy + img * y_image, ohw, workspace, ohw,
         img == 0 ? 0.0f : 1.0f, dw, ckk);
  }
}

}  // namespace ich
