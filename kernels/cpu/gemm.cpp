// Row-major GEMM through OpenBLAS: C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C.
// Called outside any OpenMP parallel region so that BLAS threads and OpenMP threads never nest.
#include <cblas.h>

#include <algorithm>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
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
  if (m == 0 || n == 0) return;
  ICH_CHECK(c != nullptr, "gemm: C is null for m=" << m << " n=" << n);
  ICH_CHECK(k == 0 || (a != nullptr && b != nullptr), "gemm: A or B is null for k=" << k);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ich
