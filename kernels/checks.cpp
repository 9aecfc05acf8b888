// The argument rules of kernels/checks.h. Each message starts with the primitive's name and
// carries the offending values, so the caller can act on it without a debugger.
#include "kernels/checks.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace ich::checks {

namespace {

void sizes_non_negative(int n, int c, int64_t hw, const char* op) {
  ICH_CHECK(n >= 0 && c >= 0 && hw >= 0,
            op << ": sizes must be >= 0, got n=" << n << " c=" << c << " hw=" << hw);
}

void batch_norm_sizes(int n, int c, int64_t hw, const char* op) {
  ICH_CHECK(n > 0 && c > 0 && hw > 0,
            op << ": sizes must be positive, got n=" << n << " c=" << c << " hw=" << hw);
}

void upsample_sizes(int n, int c, int h, int w, int oh, int ow, const char* op) {
  ICH_CHECK(n > 0 && c > 0 && h > 0 && w > 0,
            op << ": input sizes must be positive, got " << n << "x" << c << "x" << h << "x" << w);
  ICH_CHECK(oh > 0 && ow > 0, op << ": output size must be positive, got " << oh << "x" << ow);
}

void loss_inputs(int64_t n, const float* p, const float* t, const char* op) {
  ICH_CHECK(n > 0, op << ": needs at least one element, got n=" << n);
  ICH_CHECK(p != nullptr && t != nullptr, op << ": p and t must not be null");
}

}  // namespace

// ---- memory

void copy(const char* op, void* dst, const void* src, size_t bytes) {
  ICH_CHECK(bytes == 0 || (dst != nullptr && src != nullptr),
            op << " of " << bytes << " bytes with a null " << (dst == nullptr ? "dst" : "src"));
}

// ---- fill and random

void fill(const float* x, int64_t n) {
  ICH_CHECK(n >= 0, "fill: n must be >= 0, got " << n);
  ICH_CHECK(n == 0 || x != nullptr, "fill: x is null for n=" << n);
}

void uniform(const float* x, int64_t n, float lo, float hi) {
  ICH_CHECK(n >= 0, "uniform: n must be >= 0, got " << n);
  ICH_CHECK(lo <= hi, "uniform: lo " << lo << " must be <= hi " << hi);
  ICH_CHECK(n == 0 || x != nullptr, "uniform: x is null for n=" << n);
}

void normal(const float* x, int64_t n, float std) {
  ICH_CHECK(n >= 0, "normal: n must be >= 0, got " << n);
  ICH_CHECK(std >= 0.0f, "normal: std must be >= 0, got " << std);
  ICH_CHECK(n == 0 || x != nullptr, "normal: x is null for n=" << n);
}

// ---- CT windowing

void ct_window(const char* op, const void* hu, const float* out, int64_t n, float ww) {
  ICH_CHECK(n >= 0, op << ": n must be >= 0, got " << n);
  ICH_CHECK(ww > 0.0f, op << ": window width must be > 0, got " << ww);
  ICH_CHECK(n == 0 || (hu != nullptr && out != nullptr),
            op << ": null input or output for n=" << n);
}

// ---- GEMM

void gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda, const float* b,
          int ldb, const float* c, int ldc) {
  ICH_CHECK(m >= 0 && n >= 0 && k >= 0,
            "gemm: sizes must be >= 0, got m=" << m << " n=" << n << " k=" << k);
  // Stored shapes: A is (m, k) or, transposed, (k, m); B is (k, n) or (n, k).
  const int a_cols = trans_a ? m : k;
  const int b_cols = trans_b ? k : n;
  ICH_CHECK(lda >= std::max(1, a_cols),
            "gemm: lda " << lda << " is smaller than the " << a_cols << " columns of A as stored");
  ICH_CHECK(ldb >= std::max(1, b_cols),
            "gemm: ldb " << ldb << " is smaller than the " << b_cols << " columns of B as stored");
  ICH_CHECK(ldc >= std::max(1, n),
            "gemm: ldc " << ldc << " is smaller than the " << n << " columns of C");
  if (m == 0 || n == 0) return;  // nothing is read or written
  ICH_CHECK(c != nullptr, "gemm: C is null for m=" << m << " n=" << n);
  ICH_CHECK(k == 0 || (a != nullptr && b != nullptr), "gemm: A or B is null for k=" << k);
}

// ---- im2col and convolution

void conv_shape(const Conv2dShape& s, const char* op) {
  ICH_CHECK(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.k > 0 && s.kh > 0 && s.kw > 0,
            op << ": sizes must be positive, got n=" << s.n << " c=" << s.c << " h=" << s.h
               << " w=" << s.w << " k=" << s.k << " kernel " << s.kh << "x" << s.kw);
  ICH_CHECK(s.pad_h >= 0 && s.pad_w >= 0 && s.stride_h > 0 && s.stride_w > 0,
            op << ": padding must be >= 0 and stride > 0, got pad " << s.pad_h << "x" << s.pad_w
               << " stride " << s.stride_h << "x" << s.stride_w);
  ICH_CHECK(s.h + 2 * s.pad_h >= s.kh && s.w + 2 * s.pad_w >= s.kw,
            op << ": kernel " << s.kh << "x" << s.kw << " is larger than the padded input "
               << s.h + 2 * s.pad_h << "x" << s.w + 2 * s.pad_w);
  // Every backend multiplies the im2col matrix with gemm, which takes int sizes.
  ICH_CHECK(s.col_rows() <= std::numeric_limits<int>::max() &&
                s.col_cols() <= std::numeric_limits<int>::max(),
            op << ": the im2col matrix " << s.col_rows() << "x" << s.col_cols()
               << " has a side longer than a gemm can take (2^31 - 1)");
}

void im2col(const float* x, const float* col, const Conv2dShape& s) {
  conv_shape(s, "im2col");
  ICH_CHECK(x != nullptr && col != nullptr, "im2col: null input or column buffer");
}

void col2im(const float* col, const float* x, const Conv2dShape& s) {
  conv_shape(s, "col2im");
  ICH_CHECK(x != nullptr && col != nullptr, "col2im: null image or column buffer");
}

void conv2d_forward(const float* x, const float* w, const float* y, const Conv2dShape& s,
                    const float* workspace) {
  conv_shape(s, "conv2d_forward");
  ICH_CHECK(x != nullptr && w != nullptr && y != nullptr && workspace != nullptr,
            "conv2d_forward: x, w, y and workspace must not be null (bias may be)");
}

void conv2d_backward_data(const float* dy, const float* w, const float* dx, const Conv2dShape& s,
                          const float* workspace) {
  conv_shape(s, "conv2d_backward_data");
  ICH_CHECK(dy != nullptr && w != nullptr && dx != nullptr && workspace != nullptr,
            "conv2d_backward_data: dy, w, dx and workspace must not be null");
}

void conv2d_backward_weight(const float* x, const float* dy, const float* dw, const Conv2dShape& s,
                            const float* workspace) {
  conv_shape(s, "conv2d_backward_weight");
  ICH_CHECK(x != nullptr && dy != nullptr && dw != nullptr && workspace != nullptr,
            "conv2d_backward_weight: x, dy, dw and workspace must not be null");
}

// ---- bias

void bias_add(const float* y, const float* bias, int n, int c, int64_t hw) {
  sizes_non_negative(n, c, hw, "bias_add");
  ICH_CHECK(int64_t(n) * c * hw == 0 || (y != nullptr && bias != nullptr),
            "bias_add: y and bias must not be null");
}

void bias_grad(const float* dy, const float* db, int n, int c, int64_t hw) {
  sizes_non_negative(n, c, hw, "bias_grad");
  if (c == 0) return;  // nothing is written
  ICH_CHECK(db != nullptr, "bias_grad: db must not be null");
  // With no pixels db is all zeros and dy is never read.
  ICH_CHECK(dy != nullptr || int64_t(n) * hw == 0, "bias_grad: dy must not be null");
}

// ---- max pooling

void pool_shape(const Pool2dShape& s, const char* op) {
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

void max_pool2d_forward(const float* x, const float* y, const int32_t* argmax,
                        const Pool2dShape& s) {
  pool_shape(s, "max_pool2d_forward");
  ICH_CHECK(x != nullptr && y != nullptr && argmax != nullptr,
            "max_pool2d_forward: x, y and argmax must not be null");
}

void max_pool2d_backward(const float* dy, const int32_t* argmax, const float* dx,
                         const Pool2dShape& s) {
  pool_shape(s, "max_pool2d_backward");
  ICH_CHECK(dy != nullptr && argmax != nullptr && dx != nullptr,
            "max_pool2d_backward: dy, argmax and dx must not be null");
}

// ---- bilinear upsampling

void upsample_bilinear2d_forward(const float* x, const float* y, int n, int c, int h, int w, int oh,
                                 int ow) {
  upsample_sizes(n, c, h, w, oh, ow, "upsample_bilinear2d_forward");
  ICH_CHECK(x != nullptr && y != nullptr, "upsample_bilinear2d_forward: x and y must not be null");
}

void upsample_bilinear2d_backward(const float* dy, const float* dx, int n, int c, int h, int w,
                                  int oh, int ow) {
  upsample_sizes(n, c, h, w, oh, ow, "upsample_bilinear2d_backward");
  ICH_CHECK(dy != nullptr && dx != nullptr,
            "upsample_bilinear2d_backward: dy and dx must not be null");
}

// ---- batch norm

void batch_norm2d_forward_train(const float* x, const float* y, const float* gamma,
                                const float* beta, const float* running_mean,
                                const float* running_var, const float* save_mean,
                                const float* save_invstd, int n, int c, int64_t hw, float momentum,
                                float eps) {
  batch_norm_sizes(n, c, hw, "batch_norm2d_forward_train");
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
}

void batch_norm2d_forward_eval(const float* x, const float* y, const float* gamma,
                               const float* beta, const float* running_mean,
                               const float* running_var, int n, int c, int64_t hw, float eps) {
  batch_norm_sizes(n, c, hw, "batch_norm2d_forward_eval");
  ICH_CHECK(x != nullptr && y != nullptr && gamma != nullptr && beta != nullptr &&
                running_mean != nullptr && running_var != nullptr,
            "batch_norm2d_forward_eval: every pointer argument is required");
  ICH_CHECK(eps > 0.0f, "batch_norm2d_forward_eval: eps must be > 0, got " << eps);
}

void batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                           const float* save_mean, const float* save_invstd, const float* dx,
                           const float* dgamma, const float* dbeta, int n, int c, int64_t hw) {
  batch_norm_sizes(n, c, hw, "batch_norm2d_backward");
  ICH_CHECK(dy != nullptr && x != nullptr && gamma != nullptr && save_mean != nullptr &&
                save_invstd != nullptr && dx != nullptr && dgamma != nullptr && dbeta != nullptr,
            "batch_norm2d_backward: every pointer argument is required");
}

// ---- elementwise and reductions

void elementwise(const char* op, int64_t n, std::initializer_list<const void*> pointers) {
  ICH_CHECK(n >= 0, op << ": n must be >= 0, got " << n);
  const bool pointers_ok =
      std::none_of(pointers.begin(), pointers.end(), [](const void* p) { return p == nullptr; });
  ICH_CHECK(n == 0 || pointers_ok, op << ": null input or output for n=" << n);
}

void sum(const float* x, int64_t n, const float* out) {
  elementwise("sum", n, {x});
  // out is written even for n == 0 (the sum of nothing is 0).
  ICH_CHECK(out != nullptr, "sum: out must not be null");
}

// ---- dropout2d

void dropout2d_forward(const float* x, const float* y, const float* mask, int n, int c, int64_t hw,
                       float p) {
  sizes_non_negative(n, c, hw, "dropout2d_forward");
  ICH_CHECK(p >= 0.0f && p < 1.0f, "dropout2d_forward: p must be in [0, 1), got " << p);
  // The mask is drawn for every (n, c), even with no pixels to scale.
  ICH_CHECK(int64_t(n) * c == 0 || (mask != nullptr && (hw == 0 || (x != nullptr && y != nullptr))),
            "dropout2d_forward: x, y and mask must not be null");
}

void dropout2d_backward(const float* dy, const float* mask, const float* dx, int n, int c,
                        int64_t hw) {
  sizes_non_negative(n, c, hw, "dropout2d_backward");
  ICH_CHECK(int64_t(n) * c * hw == 0 || (dy != nullptr && mask != nullptr && dx != nullptr),
            "dropout2d_backward: dy, mask and dx must not be null");
}

// ---- channel concat / split

void concat_channels(const float* a, const float* b, const float* y, int n, int ca, int cb,
                     int64_t hw) {
  ICH_CHECK(n >= 0 && ca >= 0 && cb >= 0 && hw >= 0,
            "concat_channels: sizes must be >= 0, got n=" << n << " ca=" << ca << " cb=" << cb
                                                          << " hw=" << hw);
  ICH_CHECK(int64_t(n) * (ca + cb) * hw == 0 ||
                (y != nullptr && (ca == 0 || a != nullptr) && (cb == 0 || b != nullptr)),
            "concat_channels: y and the non-empty inputs must not be null");
}

void split_channels(const float* y, int n, int ca, int cb, int64_t hw) {
  ICH_CHECK(n >= 0 && ca >= 0 && cb >= 0 && hw >= 0,
            "split_channels: sizes must be >= 0, got n=" << n << " ca=" << ca << " cb=" << cb
                                                         << " hw=" << hw);
  ICH_CHECK(int64_t(n) * (ca + cb) * hw == 0 || y != nullptr, "split_channels: y must not be null");
}

// ---- losses

void soft_dice_forward(const float* p, const float* t, int64_t n, const float* stats,
                       const float* loss) {
  loss_inputs(n, p, t, "soft_dice_forward");
  ICH_CHECK(stats != nullptr && loss != nullptr, "soft_dice_forward: stats and loss are required");
}

void soft_dice_backward(const float* p, const float* t, int64_t n, const float* stats,
                        const float* dloss, const float* dp) {
  loss_inputs(n, p, t, "soft_dice_backward");
  ICH_CHECK(stats != nullptr && dloss != nullptr && dp != nullptr,
            "soft_dice_backward: stats, dloss and dp are required");
}

void bce_forward(const float* p, const float* t, int64_t n, const float* loss) {
  loss_inputs(n, p, t, "bce_forward");
  ICH_CHECK(loss != nullptr, "bce_forward: loss is required");
}

void bce_backward(const float* p, const float* t, int64_t n, const float* dloss, const float* dp) {
  loss_inputs(n, p, t, "bce_backward");
  ICH_CHECK(dloss != nullptr && dp != nullptr, "bce_backward: dloss and dp are required");
}

// ---- optimiser

void adam_step(const float* param, const float* grad, const float* m, const float* v, int64_t n,
               const AdamParams& p) {
  ICH_CHECK(n >= 0, "adam_step: n must be >= 0, got " << n);
  ICH_CHECK(p.step >= 1, "adam_step: step is 1-based, got " << p.step);
  ICH_CHECK(p.lr >= 0.0f, "adam_step: lr must be >= 0, got " << p.lr);
  ICH_CHECK(p.beta1 >= 0.0f && p.beta1 < 1.0f && p.beta2 >= 0.0f && p.beta2 < 1.0f,
            "adam_step: betas must be in [0, 1), got " << p.beta1 << ", " << p.beta2);
  ICH_CHECK(p.eps >= 0.0f, "adam_step: eps must be >= 0, got " << p.eps);
  ICH_CHECK(p.weight_decay >= 0.0f, "adam_step: weight_decay must be >= 0, got " << p.weight_decay);
  ICH_CHECK(n == 0 || (param != nullptr && grad != nullptr && m != nullptr && v != nullptr),
            "adam_step: param, grad, m and v must not be null");
}

}  // namespace ich::checks
