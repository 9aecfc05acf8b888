// The argument rules of every primitive of kernels/backend.h, in one place.
//
// Every backend (cpu, cuda, cuda-emu) calls the function named after the primitive before
// doing any work, so a caller gets the same ich::Error, with the same message, whichever
// device it runs on. A function returns normally when the arguments are valid and throws
// otherwise; it never reads device memory (pointers are only compared with null), so it is
// safe to call on the host for any backend. Rules that depend on the data (probabilities
// outside [0, 1], an argmax outside its plane, a zero Dice denominator) are not arguments:
// the backends that can see the data check them where they read it.
//
// The common rules: sizes are >= 0 (> 0 where the primitive has no meaning without data),
// a pointer may be null only when nothing is read from or written through it (an empty
// tensor, the optional conv bias, the outputs of split_channels), and a size that a backend
// hands to an int-sized interface (gemm dimensions, the int32 argmax) must fit in it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "kernels/backend.h"

namespace ich::checks {

// ---- memory: null pointers are allowed only for an empty copy. op names the method.
void copy(const char* op, void* dst, const void* src, size_t bytes);

// ---- fill and random
void fill(const float* x, int64_t n);
void uniform(const float* x, int64_t n, float lo, float hi);
void normal(const float* x, int64_t n, float std);

// ---- CT windowing (op: ct_window or ct_window_i16; hu is float or int16)
void ct_window(const char* op, const void* hu, const float* out, int64_t n, float ww);

// ---- GEMM: sizes >= 0, leading dimensions at least the stored column counts.
void gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda, const float* b,
          int ldb, const float* c, int ldc);

// ---- im2col and convolution. conv_shape: sizes > 0, padding >= 0, stride > 0, the kernel
// fits in the padded input, and each side of the im2col matrix fits in a gemm's int.
void conv_shape(const Conv2dShape& s, const char* op);
void im2col(const float* x, const float* col, const Conv2dShape& s);
void col2im(const float* col, const float* x, const Conv2dShape& s);
void conv2d_forward(const float* x, const float* w, const float* y, const Conv2dShape& s,
                    const float* workspace);
void conv2d_backward_data(const float* dy, const float* w, const float* dx, const Conv2dShape& s,
                          const float* workspace);
void conv2d_backward_weight(const float* x, const float* dy, const float* dw, const Conv2dShape& s,
                            const float* workspace);

// ---- bias
void bias_add(const float* y, const float* bias, int n, int c, int64_t hw);
void bias_grad(const float* dy, const float* db, int n, int c, int64_t hw);

// ---- max pooling. pool_shape: sizes > 0, stride > 0, 0 <= padding <= kernel / 2 (PyTorch's
// rule), the kernel fits in the padded input, and an input plane fits in the int32 argmax.
void pool_shape(const Pool2dShape& s, const char* op);
void max_pool2d_forward(const float* x, const float* y, const int32_t* argmax,
                        const Pool2dShape& s);
void max_pool2d_backward(const float* dy, const int32_t* argmax, const float* dx,
                         const Pool2dShape& s);

// ---- bilinear upsampling: input and output sizes > 0.
void upsample_bilinear2d_forward(const float* x, const float* y, int n, int c, int h, int w, int oh,
                                 int ow);
void upsample_bilinear2d_backward(const float* dy, const float* dx, int n, int c, int h, int w,
                                  int oh, int ow);

// ---- batch norm: sizes > 0, every pointer required, eps > 0, momentum in [0, 1], and in
// training more than one value per channel (the unbiased variance divides by m - 1).
void batch_norm2d_forward_train(const float* x, const float* y, const float* gamma,
                                const float* beta, const float* running_mean,
                                const float* running_var, const float* save_mean,
                                const float* save_invstd, int n, int c, int64_t hw, float momentum,
                                float eps);
void batch_norm2d_forward_eval(const float* x, const float* y, const float* gamma,
                               const float* beta, const float* running_mean,
                               const float* running_var, int n, int c, int64_t hw, float eps);
void batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                           const float* save_mean, const float* save_invstd, const float* dx,
                           const float* dgamma, const float* dbeta, int n, int c, int64_t hw);

// ---- elementwise primitives over n values (activations, add, mul, scale, axpy): n >= 0 and,
// when n > 0, none of the pointers null. op names the primitive.
void elementwise(const char* op, int64_t n, std::initializer_list<const void*> pointers);
void sum(const float* x, int64_t n, const float* out);

// ---- dropout2d: sizes >= 0, p in [0, 1).
void dropout2d_forward(const float* x, const float* y, const float* mask, int n, int c, int64_t hw,
                       float p);
void dropout2d_backward(const float* dy, const float* mask, const float* dx, int n, int c,
                        int64_t hw);

// ---- channel concat / split: sizes >= 0; split's outputs a and b may each be null.
void concat_channels(const float* a, const float* b, const float* y, int n, int ca, int cb,
                     int64_t hw);
void split_channels(const float* y, int n, int ca, int cb, int64_t hw);

// ---- losses: at least one element; every pointer required.
void soft_dice_forward(const float* p, const float* t, int64_t n, const float* stats,
                       const float* loss);
void soft_dice_backward(const float* p, const float* t, int64_t n, const float* stats,
                        const float* dloss, const float* dp);
void bce_forward(const float* p, const float* t, int64_t n, const float* loss);
void bce_backward(const float* p, const float* t, int64_t n, const float* dloss, const float* dp);

// ---- Adam: n >= 0, step >= 1, lr, eps and weight_decay >= 0, betas in [0, 1).
void adam_step(const float* param, const float* grad, const float* m, const float* v, int64_t n,
               const AdamParams& p);

}  // namespace ich::checks
