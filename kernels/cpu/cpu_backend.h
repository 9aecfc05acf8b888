// The CPU reference backend: every primitive of kernels/backend.h as plain loops
// (OpenMP over the outer dimensions) plus OpenBLAS for GEMM.
//
// One op family per file (kernels/cpu/<family>.cpp). Layouts are NCHW, contiguous.
// Determinism: results never depend on the number of OpenMP threads. Per-channel
// reductions run one channel per iteration, summed serially in double; global sums
// are cut into chunks whose boundaries depend only on n, summed in double and
// combined in chunk order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/ceil_div.h"
#include "core/error.h"
#include "core/profile.h"
#include "kernels/backend.h"
#include "kernels/checks.h"

namespace ich {

class CpuBackend final : public Backend {
 public:
  // Caching of freed host blocks follows ICH_CPU_CACHING ("0" turns it off; on by default).
  CpuBackend();
  explicit CpuBackend(bool caching);
  ~CpuBackend() override;
  CpuBackend(const CpuBackend&) = delete;
  CpuBackend& operator=(const CpuBackend&) = delete;

  Device device() const override { return Device::cpu(); }
  const char* name() const override { return "cpu"; }

  // ---- memory (cpu_backend.cpp)
  void* alloc(size_t bytes) override;
  void free(void* ptr) override;
  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override {}
  MemoryStats memory_stats() const override;
  bool caching() const { return caching_; }
  void release_cached();  // gives every cached block back to the C library
  // The size a request of `bytes` occupies: 64-byte granules up to 4 KiB, 512-byte granules
  // up to 1 MiB, then quarters of the power of two (at most 25% slack), as the CUDA cache.
  static size_t size_class(size_t bytes);

  // ---- fill and random (fill_random.cpp)
  void fill(float* x, int64_t n, float value) override;
  void uniform(float* x, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) override;
  void normal(float* x, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) override;

  // ---- CT windowing (window.cpp)
  void ct_window(const float* hu, float* out, int64_t n, float wl, float ww) override;
  void ct_window_i16(const int16_t* hu, float* out, int64_t n, float wl, float ww) override;

  // ---- GEMM (gemm.cpp)
  void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override;

  // ---- im2col / col2im (im2col.cpp)
  void im2col(const float* x, float* col, const Conv2dShape& s) override;
  void col2im(const float* col, float* x, const Conv2dShape& s) override;

  // ---- convolution (conv2d.cpp)
  size_t conv2d_workspace_floats(const Conv2dShape& s) const override;
  void conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                      const Conv2dShape& s, float* workspace) override;
  void conv2d_backward_data(const float* dy, const float* w, float* dx, const Conv2dShape& s,
                            float* workspace) override;
  void conv2d_backward_weight(const float* x, const float* dy, float* dw, const Conv2dShape& s,
                              float* workspace) override;

  // ---- bias (bias.cpp)
  void bias_add(float* y, const float* bias, int n, int c, int64_t hw) override;
  void bias_grad(const float* dy, float* db, int n, int c, int64_t hw) override;

  // ---- max pooling (pool2d.cpp)
  void max_pool2d_forward(const float* x, float* y, int32_t* argmax, const Pool2dShape& s) override;
  void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx,
                           const Pool2dShape& s) override;

  // ---- bilinear upsampling (upsample.cpp)
  void upsample_bilinear2d_forward(const float* x, float* y, int n, int c, int h, int w, int oh,
                                   int ow, bool align_corners) override;
  void upsample_bilinear2d_backward(const float* dy, float* dx, int n, int c, int h, int w, int oh,
                                    int ow, bool align_corners) override;

  // ---- batch norm (batchnorm.cpp)
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

  // ---- activations (activation.cpp)
  void relu_forward(const float* x, float* y, int64_t n) override;
  void relu_backward(const float* dy, const float* x, float* dx, int64_t n) override;
  void sigmoid_forward(const float* x, float* y, int64_t n) override;
  void sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) override;

  // ---- dropout2d (dropout.cpp)
  void dropout2d_forward(const float* x, float* y, float* mask, int n, int c, int64_t hw, float p,
                         uint64_t seed, uint64_t offset) override;
  void dropout2d_backward(const float* dy, const float* mask, float* dx, int n, int c,
                          int64_t hw) override;

  // ---- channel concat / split (concat.cpp)
  void concat_channels(const float* a, const float* b, float* y, int n, int ca, int cb,
                       int64_t hw) override;
  void split_channels(const float* y, float* a, float* b, int n, int ca, int cb,
                      int64_t hw) override;

  // ---- elementwise and reductions (elementwise.cpp)
  void add(const float* a, const float* b, float* y, int64_t n) override;
  void mul(const float* a, const float* b, float* y, int64_t n) override;
  void scale(const float* x, float* y, int64_t n, float alpha) override;
  void axpy(float alpha, const float* x, float* y, int64_t n) override;
  void sum(const float* x, int64_t n, float* out) override;

  // ---- losses (loss.cpp)
  void soft_dice_forward(const float* p, const float* t, int64_t n, float smooth, float* stats,
                         float* loss) override;
  void soft_dice_backward(const float* p, const float* t, int64_t n, float smooth,
                          const float* stats, const float* dloss, float* dp) override;
  void bce_forward(const float* p, const float* t, int64_t n, float* loss) override;
  void bce_backward(const float* p, const float* t, int64_t n, const float* dloss,
                    float* dp) override;

  // ---- optimiser (adam.cpp)
  void adam_step(float* param, const float* grad, float* m, float* v, int64_t n,
                 const AdamParams& p) override;

 private:
  void release_cached_locked();

  bool caching_ = true;
  mutable std::mutex memory_mutex_;
  std::unordered_map<void*, size_t> allocation_bytes_;         // live allocations -> size class
  std::unordered_map<size_t, std::vector<void*>> free_lists_;  // size class -> cached blocks
  MemoryStats stats_;
};

namespace cpu {

// OpenBLAS on one thread, once per process: the backend's threads are OpenMP's (gemm.cpp).
void use_single_threaded_blas();
// The kernel set OpenBLAS chose, and how ichseg corrects a fallback to generic kernels:
// kernels/cpu/blas_select.h.

// Loops over fewer elements than this run on one thread: the fork/join costs more, and on a
// busy machine a parallel region can wait a whole scheduler slice for its second thread.
constexpr int64_t kParallelThreshold = 1 << 15;

// Inner loops over contiguous data carry `#pragma omp simd`: at -O2 (the RelWithDebInfo
// build) g++ 12 vectorises only with its "very cheap" cost model, which skips any loop whose
// trip count is not a known multiple of the vector width or that needs an aliasing check,
// i.e. every loop here. `omp simd` asserts independence and vectorises it anyway. A
// reduction under `omp simd` sums in vector lanes, in an order fixed by the binary and not
// by the thread count.

// Global sums are cut into at most kMaxSumChunks chunks of at least kMinSumChunk elements;
// the boundaries depend only on n, so the result is the same for any number of threads.
constexpr int64_t kMinSumChunk = 4096;
constexpr int kMaxSumChunks = 256;

inline int64_t sum_chunk_size(int64_t n) {
  const int64_t by_count = ceil_div(n, kMaxSumChunks);
  return by_count > kMinSumChunk ? by_count : kMinSumChunk;
}

// Sum of x[0, n) in double, in the vector lanes of an `omp simd` reduction (a single
// accumulator is limited to one add per floating-point-add latency). The order is fixed by
// the binary, so the result is deterministic.
inline double sum_double(const float* x, int64_t n) {
  double total = 0.0;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < n; ++i) total += x[i];
  return total;
}

}  // namespace cpu
}  // namespace ich
