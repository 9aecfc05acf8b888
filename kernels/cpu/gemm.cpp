// Row-major GEMM through OpenBLAS: C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C.
//
// The CPU backend runs OpenBLAS on one thread (set once, below) and does its own threading
// with OpenMP: here over blocks of C's columns, in the convolution over (image, block). One
// thread pool for everything means BLAS threads never fight OpenMP threads for the cores and
// a GEMM can be called from inside an OpenMP loop. The column blocks depend only on the
// shape, so the result does not depend on the number of threads.
#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "core/ceil_div.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace cpu {

void use_single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

}  // namespace cpu

void CpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  ICH_PROFILE_SCOPE("gemm");
  checks::gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
  if (m == 0 || n == 0) return;
  constexpr int kBlock = 256;  // columns of C per task
  const int blocks = ceil_div(n, kBlock);
  const double flops = 2.0 * double(m) * double(n) * double(k);
#pragma omp parallel for schedule(static) if (blocks > 1 && flops > 4e6)
  for (int blk = 0; blk < blocks; ++blk) {
    const int j0 = blk * kBlock;
    const int nj = std::min(kBlock, n - j0);
    // Column j0 of op(B): B[:, j0] when not transposed, row j0 of B when transposed.
    const float* bj = trans_b ? b + int64_t(j0) * ldb : b + j0;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, nj, k, alpha, a, lda, bj, ldb, beta, c + j0,
                ldc);
  }
}

}  // namespace ich
