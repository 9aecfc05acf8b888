// The Backend interface: memory plus one method per primitive.
//
// Every device (cpu, cuda, cuda-emu) implements all of it; there is no silent
// fallback from one backend to another. A primitive takes raw device pointers
// and sizes, writes its outputs (overwriting them unless the comment says
// "accumulates"), and never allocates behind the caller's back: where it needs
// scratch memory, the caller passes a workspace sized by the matching *_workspace
// method. Layouts are NCHW, contiguous, float32 unless stated. Scalars that are
// results or upstream gradients of a reduction (loss, dloss, sum) live in device
// memory as one float, so a training step never has to wait for the host.
//
// The interface sits at the bottom of kernels/ (not in engine/) because the
// backends in kernels/cpu and kernels/cuda implement it; engine/ builds Tensor and
// autograd on top of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace ich {

// A 2-D convolution over a batch: input (n, c, h, w), weight (k, c, kh, kw),
// output (n, k, out_h, out_w).
struct Conv2dShape {
  int n = 1, c = 1, h = 1, w = 1;
  int k = 1;
  int kh = 3, kw = 3;
  int pad_h = 1, pad_w = 1;
  int stride_h = 1, stride_w = 1;

  int out_h() const { return (h + 2 * pad_h - kh) / stride_h + 1; }
  int out_w() const { return (w + 2 * pad_w - kw) / stride_w + 1; }
  // Rows and columns of the im2col matrix of one image: (c*kh*kw, out_h*out_w).
  int64_t col_rows() const { return int64_t(c) * kh * kw; }
  int64_t col_cols() const { return int64_t(out_h()) * out_w(); }
};

// Max pooling (floor mode, as PyTorch's default): input (n, c, h, w), output
// (n, c, out_h, out_w). Padding counts as -inf.
struct Pool2dShape {
  int n = 1, c = 1, h = 1, w = 1;
  int kh = 2, kw = 2;
  int stride_h = 2, stride_w = 2;
  int pad_h = 0, pad_w = 0;

  int out_h() const { return (h + 2 * pad_h - kh) / stride_h + 1; }
  int out_w() const { return (w + 2 * pad_w - kw) / stride_w + 1; }
};

struct AdamParams {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // false: L2 added to the gradient (torch.optim.Adam); true: AdamW
  int64_t step = 1;                     // 1-based step count, for bias correction
};

struct MemoryStats {
  size_t bytes_in_use = 0;      // handed out to callers now
  size_t peak_bytes_in_use = 0;
  size_t bytes_reserved = 0;    // obtained from the device (in use + cached)
  size_t device_alloc_calls = 0;  // cudaMalloc (or malloc) calls made
  size_t device_free_calls = 0;
  size_t cache_hits = 0;
};

class Backend {
public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  // ---- memory
  virtual void* alloc(size_t bytes) = 0;  // 64-byte aligned; throws ich::Error when out of memory
  virtual void free(void* ptr) = 0;       // ptr may be null
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void synchronize() = 0;
  virtual MemoryStats memory_stats() const { return {}; }

  // ---- fill and random
  virtual void fill(float* x, int64_t n, float value) = 0;
  // The Philox contract of core/philox.h: element i uses index offset + i.
  virtual void uniform(float* x, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) = 0;
  virtual void normal(float* x, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) = 0;

  // ---- CT windowing: out = clamp((hu - (wl - ww/2)) / ww, 0, 1)
  virtual void ct_window(const float* hu, float* out, int64_t n, float wl, float ww) = 0;
  virtual void ct_window_i16(const int16_t* hu, float* out, int64_t n, float wl, float ww) = 0;

  // ---- GEMM, row-major: C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C.
  // lda/ldb/ldc are row strides of the matrices as stored.
  virtual void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                    int lda, const float* b, int ldb, float beta, float* c, int ldc) = 0;

  // ---- im2col / col2im of ONE image: x (c, h, w) <-> col (c*kh*kw, out_h*out_w).
  // col2im overwrites x with the sum of the column entries that map to each pixel.
  virtual void im2col(const float* x, float* col, const Conv2dShape& s) = 0;
  virtual void col2im(const float* col, float* x, const Conv2dShape& s) = 0;

  // ---- convolution (cross-correlation, as PyTorch), built from im2col + gemm.
  // workspace: conv2d_workspace_floats(s) floats, owned by the caller.
  virtual size_t conv2d_workspace_floats(const Conv2dShape& s) const = 0;
  // y (n, k, oh, ow) = conv(x (n, c, h, w), w (k, c, kh, kw)) + bias (k); bias may be null.
  virtual void conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                              const Conv2dShape& s, float* workspace) = 0;
  // dx (n, c, h, w) from dy (n, k, oh, ow) and w.
  virtual void conv2d_backward_data(const float* dy, const float* w, float* dx,
                                    const Conv2dShape& s, float* workspace) = 0;
  // dw (k, c, kh, kw) = sum over the batch, from x and dy.
  virtual void conv2d_backward_weight(const float* x, const float* dy, float* dw,
                                      const Conv2dShape& s, float* workspace) = 0;

  // ---- bias over channels: y (n, c, hw) += bias (c) in place; db (c) = sum of dy over n, hw.
  virtual void bias_add(float* y, const float* bias, int n, int c, int64_t hw) = 0;
  virtual void bias_grad(const float* dy, float* db, int n, int c, int64_t hw) = 0;

  // ---- max pooling. argmax (n, c, oh, ow) holds the index h*w_in + w of the maximum inside
  // its input plane; ties go to the first element in row-major window order (PyTorch).
  virtual void max_pool2d_forward(const float* x, float* y, int32_t* argmax,
                                  const Pool2dShape& s) = 0;
  // dx (n, c, h, w) overwritten: zero except the gradients routed through argmax.
  virtual void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx,
                                   const Pool2dShape& s) = 0;

  // ---- bilinear upsampling, PyTorch's upsample_bilinear2d with scale = out/in:
  // x (n, c, h, w) -> y (n, c, oh, ow). align_corners true: src = dst * (in-1)/(out-1);
  // false: src = max((dst + 0.5) * in/out - 0.5, 0).
  virtual void upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w,
                                           int oh, int ow, bool align_corners) = 0;
  virtual void upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h,
                                            int w, int oh, int ow, bool align_corners) = 0;

  // ---- batch norm over (n, hw) per channel c.
  // Train: normalises with the batch statistics (biased variance), saves mean and 1/sqrt(var+eps)
  // for backward, and updates running stats in place: r = (1-momentum) r + momentum * batch,
  // the running variance with the unbiased batch variance (PyTorch).
  virtual void batch_norm2d_forward_train(const float* x, float* y, const float* gamma,
                                          const float* beta, float* running_mean,
                                          float* running_var, float* save_mean,
                                          float* save_invstd, int n, int c, int64_t hw,
                                          float momentum, float eps) = 0;
  virtual void batch_norm2d_forward_eval(const float* x, float* y, const float* gamma,
                                         const float* beta, const float* running_mean,
                                         const float* running_var, int n, int c, int64_t hw,
                                         float eps) = 0;
  // Backward of the train-mode forward: dx, dgamma (c), dbeta (c) overwritten.
  virtual void batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                                     const float* save_mean, const float* save_invstd, float* dx,
                                     float* dgamma, float* dbeta, int n, int c, int64_t hw) = 0;

  // ---- activations
  virtual void relu_forward(const float* x, float* y, int64_t n) = 0;
  virtual void relu_backward(const float* dy, const float* x, float* dx, int64_t n) = 0;  // dx = dy * (x > 0)
  virtual void sigmoid_forward(const float* x, float* y, int64_t n) = 0;
  virtual void sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) = 0;  // dy * y * (1 - y)

  // ---- dropout2d: zeroes whole channels. mask (n, c) is written with 0 or 1/(1-p), drawn by the
  // Philox contract (element index n*C + c, keep when u >= p). p in [0, 1).
  virtual void dropout2d_forward(const float* x, float* y, float* mask, int n, int c, int64_t hw,
                                 float p, uint64_t seed, uint64_t offset) = 0;
  virtual void dropout2d_backward(const float* dy, const float* mask, float* dx, int n, int c,
                                  int64_t hw) = 0;

  // ---- channel concat: y (n, ca+cb, hw) = [a (n, ca, hw), b (n, cb, hw)]; split is its inverse
  // (either output of split may be null to skip it).
  virtual void concat_channels(const float* a, const float* b, float* y, int n, int ca, int cb,
                               int64_t hw) = 0;
  virtual void split_channels(const float* y, float* a, float* b, int n, int ca, int cb,
                              int64_t hw) = 0;

  // ---- elementwise and reductions
  virtual void add(const float* a, const float* b, float* y, int64_t n) = 0;
  virtual void mul(const float* a, const float* b, float* y, int64_t n) = 0;
  virtual void scale(const float* x, float* y, int64_t n, float alpha) = 0;
  virtual void axpy(float alpha, const float* x, float* y, int64_t n) = 0;  // y += alpha x (accumulates)
  virtual void sum(const float* x, int64_t n, float* out) = 0;               // out[0] = sum of x

  // ---- losses, both over all n elements of p (probabilities) and t (targets in [0, 1]).
  // Soft Dice, medicaltorch's global form: loss = -(2 sum(p t) + smooth) / (sum p + sum t + smooth).
  // stats[0] = sum(p t), stats[1] = sum(p) + sum(t), kept for backward.
  virtual void soft_dice_forward(const float* p, const float* t, int64_t n, float smooth,
                                 float* stats, float* loss) = 0;
  virtual void soft_dice_backward(const float* p, const float* t, int64_t n, float smooth,
                                  const float* stats, const float* dloss, float* dp) = 0;
  // Mean binary cross-entropy; log clamped at -100 as PyTorch's BCELoss.
  virtual void bce_forward(const float* p, const float* t, int64_t n, float* loss) = 0;
  virtual void bce_backward(const float* p, const float* t, int64_t n, const float* dloss,
                            float* dp) = 0;

  // ---- optimiser: one fused Adam step over n parameters (m, v updated in place).
  virtual void adam_step(float* param, const float* grad, float* m, float* v, int64_t n,
                         const AdamParams& p) = 0;
};

// The backend of a device. cpu is always there; cuda and cuda-emu exist when the build has them
// (and, for cuda, when a GPU is present). Anything else throws ich::Error naming what is missing.
Backend& backend_for(const Device& device);
bool backend_available(const Device& device);

}  // namespace ich
