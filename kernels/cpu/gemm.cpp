// Row-major GEMM through OpenBLAS: C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C.
// Called outside any OpenMP parallel region so that BLAS threads and OpenMP threads never nest.
#include <cblas.h>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  ICH_PROFILE_SCOPE("gemm");
  checks::gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ich
