// Convolution (cross-correlation, as PyTorch) as im2col + GEMM, blocked over output columns
// so that the im2col matrix of a whole image is never materialised:
//   forward          y_n[:, Q] (k, |Q|)  = w (k, ckk) * col(x_n)[:, Q] (ckk, |Q|)   (+ bias)
//   backward data    stride 1: dx = conv(dy, w~) with w~[c][k][i][j] = w[k][c][kh-1-i][kw-1-j]
//                    and padding kh-1-pad, i.e. the forward path again (dx blocks disjoint);
//                    other strides: col = w^T * dy_n, dx_n = col2im(col), one image per task
//   backward weight  dw (k, ckk) = sum over n, Q of dy_n[:, Q] * col(x_n)[:, Q]^T
// 3x3 / stride 1 / pad 1 convolutions (forward, and backward data through the forward path)
// may run as Winograd F(4x4, 3x3) instead: conv2d_winograd.cpp, chosen by ICH_CONV_ALGO
// (conv_algo.h), and so may their weight gradient (conv2d_winograd.cpp, same setting).
// Q is a block of output pixels whose im2col slice (ckk, |Q|) fits in L2 (column_block);
// the tasks (image, block) run under OpenMP, each thread with its own slice of the caller's
// workspace and single-threaded BLAS inside (the backend keeps OpenBLAS at one thread, see
// gemm.cpp), so BLAS and OpenMP threads never compete for the cores.
//
// Determinism: the blocks depend only on the shape, and every output element is produced by
// one GEMM call, so results do not depend on the number of threads. The weight gradient is
// summed into partial buffers, one per (image, group of blocks) fixed by the shape, which
// are added in a fixed order.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/ceil_div.h"
#include "kernels/cpu/conv_algo.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

// The im2col slice of one block holds about this many floats (1 MiB, half the 2 MiB L2 of
// the Xeon cores of our CI machines): larger slices spill the packed GEMM panels out of L2,
// smaller ones make OpenBLAS repack the weights too often.
constexpr int64_t kColBlockFloats = int64_t(1) << 18;
constexpr int64_t kMinBlockCols = 64;
// The weight gradient is cut into at least this many partial sums (per image, then groups
// of blocks), so that a batch of 1 still uses more than one core.
constexpr int64_t kMinWeightTasks = 4;


// Output columns per block: a multiple of 16 (the GEMM's column tile), at least 64.
int64_t column_block(int64_t col_rows, int64_t ohw) {
  int64_t bq = kColBlockFloats / std::max<int64_t>(col_rows, 1);
  bq = std::max(kMinBlockCols, bq / 16 * 16);
  if (bq >= ohw) return ohw;
  // Even out the blocks so that the last is not a sliver.
  const int64_t nb = ceil_div(ohw, bq);
  return std::min(ohw, round_up(ceil_div(ohw, nb), 16));
}

bool is_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.pad_h == 0 && s.pad_w == 0 && s.stride_h == 1 &&
         s.stride_w == 1;
}

// Backward data can run as a forward convolution with the flipped, transposed kernel.
bool backward_data_as_forward(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_h <= s.kh - 1 && s.pad_w <= s.kw - 1;
}

Conv2dShape transposed_shape(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.c = s.k;
  t.h = s.out_h();
  t.w = s.out_w();
  t.k = s.c;
  t.pad_h = s.kh - 1 - s.pad_h;
  t.pad_w = s.kw - 1 - s.pad_w;
  return t;  // t.out_h() == s.h, t.out_w() == s.w for stride 1
}

int threads() {
  return omp_get_max_threads();
}

// Columns [q0, q1) of the im2col matrix of one image x (c, h, w) into col (ckk, q1 - q0).
void im2col_block(const float* x, float* col, const Conv2dShape& s, int64_t q0, int64_t q1) {
  const int ow = s.out_w();
  const int64_t bq = q1 - q0;
  const int64_t rows = s.col_rows();
  for (int64_t r = 0; r < rows; ++r) {
    const int j = static_cast<int>(r % s.kw);
    const int i = static_cast<int>((r / s.kw) % s.kh);
    const int64_t ci = r / (int64_t(s.kw) * s.kh);
    const float* plane = x + ci * s.h * s.w;  // (h, w)
    float* out = col + r * bq;
    for (int64_t q = q0; q < q1;) {
      const int oy = static_cast<int>(q / ow);
      const int ox_begin = static_cast<int>(q % ow);
      const int64_t seg_end = std::min<int64_t>(q1, int64_t(oy + 1) * ow);
      const int ox_end = ox_begin + static_cast<int>(seg_end - q);
      float* o = out + (q - q0) - ox_begin;  // o[ox] is column (oy, ox)
      const int y = oy * s.stride_h - s.pad_h + i;
      if (y < 0 || y >= s.h) {
        std::memset(o + ox_begin, 0, sizeof(float) * size_t(ox_end - ox_begin));
      } else if (s.stride_w == 1) {
        // x column ox - pad_w + j is inside the row for ox in [pad_w - j, w + pad_w - j).
        const int lo = std::min(std::max(ox_begin, s.pad_w - j), ox_end);
        const int hi = std::max(std::min(ox_end, s.w + s.pad_w - j), lo);
        const float* src = plane + int64_t(y) * s.w - s.pad_w + j;
        for (int ox = ox_begin; ox < lo; ++ox) o[ox] = 0.0f;
        if (hi > lo) std::memcpy(o + lo, src + lo, sizeof(float) * size_t(hi - lo));
        for (int ox = hi; ox < ox_end; ++ox) o[ox] = 0.0f;
      } else {
        for (int ox = ox_begin; ox < ox_end; ++ox) {
          const int xx = ox * s.stride_w - s.pad_w + j;
          o[ox] = (xx >= 0 && xx < s.w) ? plane[int64_t(y) * s.w + xx] : 0.0f;
        }
      }
      q = seg_end;
    }
  }
}

// y (n, k, oh, ow) = conv(x, w) + bias through per-thread im2col slices in `cols`
// (threads() * ckk * column_block floats; unused for pointwise convolutions).
void forward_blocked(const float* x, const float* w, const float* bias, float* y,
                     const Conv2dShape& s, float* cols) {
  const int64_t rows = s.col_rows();
  const int64_t ohw = s.col_cols();
  const int64_t bq = column_block(rows, ohw);
  const int64_t nb = ceil_div(ohw, bq);
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
  const bool pointwise = is_pointwise(s);
  const int64_t tasks = int64_t(s.n) * nb;
  const double flops = 2.0 * double(s.k) * double(rows) * double(ohw) * s.n;
#pragma omp parallel for schedule(static) if (tasks > 1 && flops > 4e6)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t img = t / nb;
    const int64_t q0 = (t % nb) * bq;
    const int64_t q1 = std::min(ohw, q0 + bq);
    const int cols_n = static_cast<int>(q1 - q0);
    const float* b = x + img * x_image + q0;
    int ldb = static_cast<int>(ohw);
    if (!pointwise) {
      float* col = cols + int64_t(omp_get_thread_num()) * rows * bq;
      im2col_block(x + img * x_image, col, s, q0, q1);
      b = col;
      ldb = cols_n;
    }
    float* yb = y + img * y_image + q0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.k, cols_n, static_cast<int>(rows),
                1.0f, w, static_cast<int>(rows), b, ldb, 0.0f, yb, static_cast<int>(ohw));
    if (bias != nullptr) {
      for (int co = 0; co < s.k; ++co) {
        float* row = yb + int64_t(co) * ohw;
        const float bco = bias[co];
        for (int q = 0; q < cols_n; ++q) row[q] += bco;
      }
    }
  }
}

size_t forward_workspace(const Conv2dShape& s) {
  if (is_pointwise(s)) return 0;
  const int64_t rows = s.col_rows();
  return size_t(threads()) * size_t(rows) * size_t(column_block(rows, s.col_cols()));
}

int64_t weight_groups(const Conv2dShape& s) {
  const int64_t nb = ceil_div(s.col_cols(), column_block(s.col_rows(), s.col_cols()));
  return std::max<int64_t>(1, std::min(nb, ceil_div(kMinWeightTasks, s.n)));
}

}  // namespace

size_t CpuBackend::conv2d_workspace_floats(const Conv2dShape& s) const {
  checks::conv_shape(s, "conv2d_workspace_floats");
  size_t fwd = forward_workspace(s);
  if (cpu::use_winograd(s)) fwd = std::max(fwd, cpu::winograd_workspace_floats(s));
  size_t bwd_data;
  if (backward_data_as_forward(s)) {
    const Conv2dShape t = transposed_shape(s);
    size_t as_forward = forward_workspace(t);
    if (cpu::use_winograd(t)) as_forward = std::max(as_forward, cpu::winograd_workspace_floats(t));
    bwd_data = size_t(s.k) * s.c * s.kh * s.kw + as_forward;
  } else {
    bwd_data = size_t(threads()) * size_t(s.col_rows()) * size_t(s.col_cols());
  }
  const size_t partials = size_t(s.n * weight_groups(s)) * size_t(s.k) * size_t(s.col_rows());
  const size_t bwd_weight =
      size_t(threads()) * size_t(s.col_rows()) * size_t(column_block(s.col_rows(), s.col_cols())) +
      (partials > size_t(s.k) * size_t(s.col_rows()) ? partials : 0);
  const size_t bwd_weight_winograd =
      cpu::use_winograd_weight(s) ? cpu::winograd_backward_weight_workspace_floats(s) : 0;
  return std::max({fwd, bwd_data, bwd_weight, bwd_weight_winograd, size_t(1)});
}

void CpuBackend::conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                                const Conv2dShape& s, float* workspace) {
  ICH_PROFILE_SCOPE("conv2d_forward");
  checks::conv2d_forward(x, w, y, s, workspace);
  if (cpu::use_winograd(s)) {
    cpu::winograd_forward(x, w, bias, y, s, workspace);
    return;
  }
  forward_blocked(x, w, bias, y, s, workspace);
}

void CpuBackend::conv2d_backward_data(const float* dy, const float* w, float* dx,
                                      const Conv2dShape& s, float* workspace) {
  ICH_PROFILE_SCOPE("conv2d_backward_data");
  checks::conv2d_backward_data(dy, w, dx, s, workspace);
  if (backward_data_as_forward(s)) {
    // w~ (c, k, kh, kw): transposed in the channels, flipped in space.
    float* wt = workspace;
    const int64_t kk = int64_t(s.kh) * s.kw;
    for (int co = 0; co < s.k; ++co)
      for (int ci = 0; ci < s.c; ++ci)
        for (int64_t e = 0; e < kk; ++e)
          wt[(int64_t(ci) * s.k + co) * kk + (kk - 1 - e)] = w[(int64_t(co) * s.c + ci) * kk + e];
    const Conv2dShape t = transposed_shape(s);
    float* rest = workspace + int64_t(s.k) * s.c * kk;
    if (cpu::use_winograd(t)) {
      cpu::winograd_forward(dy, wt, nullptr, dx, t, rest);
    } else {
      forward_blocked(dy, wt, nullptr, dx, t, rest);
    }
    return;
  }
  const int ckk = static_cast<int>(s.col_rows());
  const int ohw = static_cast<int>(s.col_cols());
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
#pragma omp parallel for schedule(static) if (s.n > 1)
  for (int img = 0; img < s.n; ++img) {
    float* col = workspace + int64_t(omp_get_thread_num()) * ckk * ohw;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, ohw, s.k, 1.0f, w, ckk,
                dy + img * y_image, ohw, 0.0f, col, ohw);
    // col2im inline (the primitive has its own OpenMP loop; here we are inside one).
    float* dxi = dx + img * x_image;
    std::memset(dxi, 0, sizeof(float) * size_t(x_image));
    const int oh = s.out_h(), ow = s.out_w();
    for (int64_t r = 0; r < ckk; ++r) {
      const int j = static_cast<int>(r % s.kw);
      const int i = static_cast<int>((r / s.kw) % s.kh);
      const int64_t ci = r / (int64_t(s.kw) * s.kh);
      float* plane = dxi + ci * s.h * s.w;
      const float* in = col + r * ohw;
      for (int oy = 0; oy < oh; ++oy) {
        const int yy = oy * s.stride_h - s.pad_h + i;
        if (yy < 0 || yy >= s.h) continue;
        for (int ox = 0; ox < ow; ++ox) {
          const int xx = ox * s.stride_w - s.pad_w + j;
          if (xx >= 0 && xx < s.w) plane[int64_t(yy) * s.w + xx] += in[oy * ow + ox];
        }
      }
    }
  }
}

void CpuBackend::conv2d_backward_weight(const float* x, const float* dy, float* dw,
                                        const Conv2dShape& s, float* workspace) {
  ICH_PROFILE_SCOPE("conv2d_backward_weight");
  checks::conv2d_backward_weight(x, dy, dw, s, workspace);
  if (cpu::use_winograd_weight(s)) {
    cpu::winograd_backward_weight(x, dy, dw, s, workspace);
    return;
  }
  const int64_t rows = s.col_rows();
  const int64_t ohw = s.col_cols();
  const int64_t bq = column_block(rows, ohw);
  const int64_t nb = ceil_div(ohw, bq);
  const int64_t groups = weight_groups(s);
  const int64_t tasks = int64_t(s.n) * groups;
  const int64_t x_image = int64_t(s.c) * s.h * s.w;
  const int64_t y_image = int64_t(s.k) * ohw;
  const int64_t dw_size = int64_t(s.k) * rows;
  const bool pointwise = is_pointwise(s);
  float* cols = workspace;
  float* partials = workspace + int64_t(threads()) * rows * bq;
  const double flops = 2.0 * double(s.k) * double(rows) * double(ohw) * s.n;
#pragma omp parallel for schedule(static) if (tasks > 1 && flops > 4e6)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t img = t / groups;
    const int64_t g = t % groups;
    float* out = tasks == 1 ? dw : partials + t * dw_size;
    float* col = cols + int64_t(omp_get_thread_num()) * rows * bq;
    const int64_t b_begin = g * nb / groups, b_end = (g + 1) * nb / groups;
    if (b_begin == b_end) std::memset(out, 0, sizeof(float) * size_t(dw_size));
    for (int64_t b = b_begin; b < b_end; ++b) {
      const int64_t q0 = b * bq;
      const int64_t q1 = std::min(ohw, q0 + bq);
      const float* xb = x + img * x_image + q0;
      int ldx = static_cast<int>(ohw);
      if (!pointwise) {
        im2col_block(x + img * x_image, col, s, q0, q1);
        xb = col;
        ldx = static_cast<int>(q1 - q0);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.k, static_cast<int>(rows),
                  static_cast<int>(q1 - q0), 1.0f, dy + img * y_image + q0, static_cast<int>(ohw),
                  xb, ldx, b == b_begin ? 0.0f : 1.0f, out, static_cast<int>(rows));
    }
  }
  // Partials added in task order; each element's sum has the same order for any thread count.
  if (tasks == 1) return;
#pragma omp parallel for schedule(static) if (dw_size * tasks > cpu::kParallelThreshold)
  for (int64_t e = 0; e < dw_size; ++e) {
    float acc = partials[e];
    for (int64_t t = 1; t < tasks; ++t) acc += partials[t * dw_size + e];
    dw[e] = acc;
  }
}

}  // namespace ich
