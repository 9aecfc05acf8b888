// The CUDA backend: every primitive of kernels/backend.h as hand-written kernels (and
// cuBLAS for GEMM on a GPU), compiled twice from the same sources:
//   cuda      nvcc, runs on a GPU               (namespace ich::cuda)
//   cuda-emu  host compiler + kernels/emu       (namespace ich::cuda_emu)
//
// One instance owns one stream on one device and issues everything on it, in order;
// alloc/free go through the caching allocator (kernels/cuda/allocator.h). Members are
// defined next to their kernels: each kernels/cuda/<family>.cu holds the kernels, their
// launchers (which take the LaunchContext) and the CudaBackend members of that family;
// cuda_backend.cpp holds only construction, memory, streams, synchronisation and the factories.
#pragma once

#include <memory>

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/cuda_options.h"
#include "kernels/cuda/runtime.h"

namespace ich::ICH_CUDA_NS {

class CudaBackend final : public Backend {
 public:
  // device_index is ignored by cuda-emu (there is one emulated device).
  CudaBackend(int device_index, const CudaBackendOptions& options);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override;
  const char* name() const override;

  // ---- memory (cuda_backend.cpp)
  void* alloc(size_t bytes) override;
  void free(void* ptr) override;
  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  MemoryStats memory_stats() const override;

  // ---- fill and random (fill_random.cu)
  void fill(float* x, int64_t n, float value) override;
  void uniform(float* x, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) override;
  void normal(float* x, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) override;

  // ---- CT windowing (window.cu)
  void ct_window(const float* hu, float* out, int64_t n, float wl, float ww) override;
  void ct_window_i16(const int16_t* hu, float* out, int64_t n, float wl, float ww) override;

  // ---- GEMM (gemm.cu): cuBLAS or our tiled SGEMM, per options().gemm
  void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override;

  // ---- im2col / col2im (im2col.cu)
  void im2col(const float* x, float* col, const Conv2dShape& s) override;
  void col2im(const float* col, float* x, const Conv2dShape& s) override;

  // ---- convolution (conv2d.cu)
  size_t conv2d_workspace_floats(const Conv2dShape& s) const override;
  void conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                      const Conv2dShape& s, float* workspace) override;
  void conv2d_backward_data(const float* dy, const float* w, float* dx, const Conv2dShape& s,
                            float* workspace) override;
  void conv2d_backward_weight(const float* x, const float* dy, float* dw, const Conv2dShape& s,
                              float* workspace) override;

  // ---- bias (bias.cu)
  void bias_add(float* y, const float* bias, int n, int c, int64_t hw) override;
  void bias_grad(const float* dy, float* db, int n, int c, int64_t hw) override;

  // ---- max pooling (pool2d.cu)
  void max_pool2d_forward(const float* x, float* y, int32_t* argmax, const Pool2dShape& s) override;
  void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx,
                           const Pool2dShape& s) override;

  // ---- bilinear upsampling (upsample.cu)
  void upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w, int oh,
                                   int ow, bool align_corners) override;
  void upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h, int w, int oh,
                                    int ow, bool align_corners) override;

  // ---- batch norm (batchnorm.cu)
  void batch_norm2d_forward_train(const float* x, float* y, const float* gamma, const float* beta,
                                  float* running_mean, float* running_var, float* save_mean,
                                  float* save_invstd, int n, int c, int64_t hw, float momentum,
                                  float eps) override;
  void batch_norm2d_forward_eval(const float* x, float* y, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, int n, int c,
                                 int64_t hw, float eps) override;
  void batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                             const float* save_mean, const float* save_invstd, float* dx,
                             float* dgamma, float* dbeta, int n, int c, int64_t hw) override;

  // ---- activations (activation.cu)
  void relu_forward(const float* x, float* y, int64_t n) override;
  void relu_backward(const float* dy, const float* x, float* dx, int64_t n) override;
  void sigmoid_forward(const float* x, float* y, int64_t n) override;
  void sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) override;

  // ---- dropout2d (dropout.cu)
  void dropout2d_forward(const float* x, float* y, float* mask, int n, int c, int64_t hw, float p,
                         uint64_t seed, uint64_t offset) override;
  void dropout2d_backward(const float* dy, const float* mask, float* dx, int n, int c,
                          int64_t hw) override;

  // ---- channel concat / split (concat.cu)
  void concat_channels(const float* a, const float* b, float* y, int n, int ca, int cb,
                       int64_t hw) override;
  void split_channels(const float* y, float* a, float* b, int n, int ca, int cb,
                      int64_t hw) override;

  // ---- elementwise and reductions (elementwise.cu)
  void add(const float* a, const float* b, float* y, int64_t n) override;
  void mul(const float* a, const float* b, float* y, int64_t n) override;
  void scale(const float* x, float* y, int64_t n, float alpha) override;
  void axpy(float alpha, const float* x, float* y, int64_t n) override;
  void sum(const float* x, int64_t n, float* out) override;

  // ---- losses (loss.cu)
  void soft_dice_forward(const float* p, const float* t, int64_t n, float smooth, float* stats,
                         float* loss) override;
  void soft_dice_backward(const float* p, const float* t, int64_t n, float smooth,
                          const float* stats, const float* dloss, float* dp) override;
  void bce_forward(const float* p, const float* t, int64_t n, float* loss) override;
  void bce_backward(const float* p, const float* t, int64_t n, const float* dloss,
                    float* dp) override;

  // ---- optimiser (adam.cu)
  void adam_step(float* param, const float* grad, float* m, float* v, int64_t n,
                 const AdamParams& p) override;

  // ---- for the members and launchers of this backend
  const LaunchContext& launch_context() const { return launch_; }
  cudaStream_t stream() const { return launch_.stream; }
  const CudaBackendOptions& options() const { return options_; }
  int device_index() const { return device_index_; }
  // Scratch for the two-pass reductions (sum, dice, bce): kReductionSlots floats per block
  // of the first pass, for at most kMaxReductionBlocks blocks. Owned by the backend and
  // used in stream order, so reductions never allocate.
  static constexpr int kMaxReductionBlocks = 1024;
  static constexpr int kReductionSlots = 4;
  float* reduction_scratch() const { return reduction_scratch_; }
#if !defined(ICH_CUDA_EMU)
  cublasHandle_t cublas() const {
    return cublas_;
  }
#endif

 private:
  int device_index_ = 0;
  CudaBackendOptions options_;
  LaunchContext launch_;
  std::unique_ptr<CachingAllocator> allocator_;
  float* reduction_scratch_ = nullptr;
#if !defined(ICH_CUDA_EMU)
  cublasHandle_t cublas_ = nullptr;
#endif
};

}  // namespace ich::ICH_CUDA_NS
