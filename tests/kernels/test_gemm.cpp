// GEMM (row-major, OpenBLAS) against a naive triple loop in double.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/blas_select.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

namespace {

// C (m, n) = alpha op(A) op(B) + beta C with explicit strides, in double.
void naive_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const std::vector<float>& a,
                int lda, const std::vector<float>& b, int ldb, double beta, std::vector<double>& c,
                int ldc) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int p = 0; p < k; ++p) {
        const double av = ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      c[i * ldc + j] = alpha * acc + beta * c[i * ldc + j];
    }
  }
}

}  // namespace

TEST_CASE("gemm: all four transpose combinations with padded strides and beta", "[gemm]") {
  Backend& be = cpu_backend();
  const int m = 5, n = 7, k = 4;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      // Stored shapes: A (m, k) or (k, m); B (k, n) or (n, k); each row padded by 3 columns.
      const int a_rows = ta ? k : m, a_cols = ta ? m : k;
      const int b_rows = tb ? n : k, b_cols = tb ? k : n;
      const int lda = a_cols + 3, ldb = b_cols + 2, ldc = n + 5;
      const std::vector<float> a = random_values(size_t(a_rows) * lda, 10 + ta);
      const std::vector<float> b = random_values(size_t(b_rows) * ldb, 20 + tb);
      std::vector<float> c = random_values(size_t(m) * ldc, 30);
      std::vector<double> expected = to_double(c);
      const float alpha = 0.75f, beta = -0.5f;
      naive_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
      be.gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      INFO("trans_a " << ta << " trans_b " << tb);
      // The padding columns of C are untouched, everything else matches the reference.
      CHECK(max_abs_diff(c, expected) < 1e-5);
    }
  }
}

TEST_CASE("gemm: beta 0 ignores the old C, k 0 scales C", "[gemm]") {
  Backend& be = cpu_backend();
  const std::vector<float> a = {1.f, 2.f, 3.f, 4.f};  // (2, 2)
  const std::vector<float> b = {5.f, 6.f, 7.f, 8.f};  // (2, 2)
  std::vector<float> c = {100.f, 100.f, 100.f, 100.f};
  be.gemm(false, false, 2, 2, 2, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2);
  CHECK(c == std::vector<float>{19.f, 22.f, 43.f, 50.f});
  be.gemm(false, false, 2, 2, 0, 1.f, a.data(), 1, b.data(), 2, 2.f, c.data(), 2);
  CHECK(c == std::vector<float>{38.f, 44.f, 86.f, 100.f});
}

TEST_CASE("gemm: bad sizes and strides throw", "[gemm]") {
  Backend& be = cpu_backend();
  std::vector<float> a(16), b(16), c(16);
  CHECK_THROWS_AS(be.gemm(false, false, -1, 2, 2, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2),
                  Error);
  CHECK_THROWS_AS(be.gemm(false, false, 2, 2, 3, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2),
                  Error);  // lda 2 < k 3
  CHECK_THROWS_AS(be.gemm(true, false, 3, 2, 2, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2),
                  Error);  // A^T stored (k, m) = (2, 3) needs lda >= 3
  CHECK_THROWS_AS(be.gemm(false, false, 2, 4, 2, 1.f, a.data(), 2, b.data(), 4, 0.f, c.data(), 3),
                  Error);  // ldc 3 < n 4
}

// kernels/cpu/blas_select.h: the user's OPENBLAS_CORETYPE and ICH_BLAS_AUTO=0 always win.
TEST_CASE("blas_select: a set OPENBLAS_CORETYPE or ICH_BLAS_AUTO=0 leaves OpenBLAS's choice",
          "[gemm]") {
  REQUIRE_FALSE(cpu::blas_core_name().empty());
  const char* saved_core = std::getenv("OPENBLAS_CORETYPE");
  const char* saved_auto = std::getenv("ICH_BLAS_AUTO");
  const std::string core = saved_core ? saved_core : "", automatic = saved_auto ? saved_auto : "";

  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  unsetenv("ICH_BLAS_AUTO");
  CHECK(cpu::better_blas_core().empty());
  unsetenv("OPENBLAS_CORETYPE");
  setenv("ICH_BLAS_AUTO", "0", 1);
  CHECK(cpu::better_blas_core().empty());
  // Without either, a suggestion is only made for a generic family and is a known name.
  unsetenv("ICH_BLAS_AUTO");
  const std::string better = cpu::better_blas_core();
  CHECK((better.empty() || better == "Haswell" || better == "SkylakeX"));

  if (saved_core)
    setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  else
    unsetenv("OPENBLAS_CORETYPE");
  if (saved_auto)
    setenv("ICH_BLAS_AUTO", automatic.c_str(), 1);
  else
    unsetenv("ICH_BLAS_AUTO");
}
