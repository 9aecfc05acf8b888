// add, mul, scale, axpy and sum: values, gradients through the primitives the engine's
// backward rules use, and a sum that is bit-identical for 1 and 2 OpenMP threads.
#include <omp.h>

#include <catch2/catch.hpp>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

TEST_CASE("elementwise: values by hand, outputs may alias inputs", "[elementwise]") {
  Backend& be = cpu_backend();
  const std::vector<float> a = {1, -2, 3}, b = {0.5f, 4, -1};
  std::vector<float> y(3);
  be.add(a.data(), b.data(), y.data(), 3);
  CHECK(y == std::vector<float>{1.5f, 2, 2});
  be.mul(a.data(), b.data(), y.data(), 3);
  CHECK(y == std::vector<float>{0.5f, -8, -3});
  be.scale(a.data(), y.data(), 3, -2.f);
  CHECK(y == std::vector<float>{-2, 4, -6});
  be.axpy(0.5f, a.data(), y.data(), 3);  // accumulates
  CHECK(y == std::vector<float>{-1.5f, 3, -4.5f});
  std::vector<float> z = a;
  be.add(z.data(), b.data(), z.data(), 3);  // in place
  CHECK(z == std::vector<float>{1.5f, 2, 2});
  float s = 0.f;
  be.sum(a.data(), 3, &s);
  CHECK(s == 2.f);
  be.sum(a.data(), 0, &s);
  CHECK(s == 0.f);
  CHECK_THROWS_AS(be.add(a.data(), nullptr, y.data(), 3), Error);
  CHECK_THROWS_AS(be.sum(a.data(), -1, &s), Error);
}

TEST_CASE("elementwise: add, mul, scale and sum pass the gradient check", "[elementwise]") {
  Backend& be = cpu_backend();
  const int64_t n = 50;
  const std::vector<float> a = random_values(n, 91), b = random_values(n, 92);
  const std::vector<float> r = random_values(n, 93);
  auto run = [&](auto op, const std::vector<float>& av, const std::vector<float>& bv) {
    std::vector<float> y(n);
    op(av, bv, y);
    return weighted_sum(r, y);
  };
  auto add = [&](const std::vector<float>& x1, const std::vector<float>& x2,
                 std::vector<float>& y) { be.add(x1.data(), x2.data(), y.data(), n); };
  auto mul = [&](const std::vector<float>& x1, const std::vector<float>& x2,
                 std::vector<float>& y) { be.mul(x1.data(), x2.data(), y.data(), n); };
  auto scale = [&](const std::vector<float>& x1, const std::vector<float>&, std::vector<float>& y) {
    be.scale(x1.data(), y.data(), n, -1.75f);
  };
  // d<r, a + b>/da = r; d<r, a * b>/da = r * b; d<r, alpha a>/da = alpha r.
  std::vector<float> grad_mul(n), grad_scale(n);
  be.mul(r.data(), b.data(), grad_mul.data(), n);
  be.scale(r.data(), grad_scale.data(), n, -1.75f);
  const GradCheckResult ra =
      check_gradient([&](const std::vector<double>& v) { return run(add, to_float(v), b); },
                     to_double(a), to_double(r));
  const GradCheckResult rm =
      check_gradient([&](const std::vector<double>& v) { return run(mul, to_float(v), b); },
                     to_double(a), to_double(grad_mul));
  const GradCheckResult rs =
      check_gradient([&](const std::vector<double>& v) { return run(scale, to_float(v), b); },
                     to_double(a), to_double(grad_scale));
  CHECK(ra.ok());
  CHECK(rm.ok());
  CHECK(rs.ok());
  // d(g * sum(x))/dx = g everywhere: the engine's backward of sum is a fill.
  const float g = 0.3f;
  std::vector<float> grad_sum(n);
  be.fill(grad_sum.data(), n, g);
  const GradCheckResult rsum = check_gradient(
      [&](const std::vector<double>& v) {
        const std::vector<float> xf = to_float(v);
        float s = 0.f;
        be.sum(xf.data(), n, &s);
        return double(g) * s;
      },
      to_double(a), to_double(grad_sum));
  INFO(rsum.first_failure);
  CHECK(rsum.ok());
}

TEST_CASE("elementwise: sum is accurate and the same bits for 1 and 2 threads",
          "[elementwise][determinism]") {
  Backend& be = cpu_backend();
  const int64_t n = 1000003;  // not a multiple of any chunk size
  const std::vector<float> x = random_values(size_t(n), 94, -1.f, 3.f);
  double reference = 0.0;
  for (float v : x) reference += v;
  const int saved = omp_get_max_threads();
  float one = 0.f, two = 0.f;
  omp_set_num_threads(1);
  be.sum(x.data(), n, &one);
  omp_set_num_threads(2);
  be.sum(x.data(), n, &two);
  omp_set_num_threads(saved);
  CHECK(one == two);  // bitwise: float == on finite values
  CHECK(one == Approx(reference).epsilon(1e-7));
}
