// add, mul, scale, axpy and sum: values by hand, and a sum that is bit-identical for 1 and 2
// OpenMP threads (their gradient checks are the op table's: tests/ops).
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

TEST_CASE("elementwise: sum is accurate and the same bits for 1 and 2 threads",
          "[elementwise][determinism]") {
  Backend& be = cpu_backend();
  const int64_t n = 1000003;  // not a multiple of any chunk size
  const std::vector<float> x = random_values(size_t(n), 94, -1.f, 3.f);
  double reference = 0.0;
  for (float v : x) reference += v;
  float one = 0.f, two = 0.f;
  {
    const OmpThreads limit(1);
    be.sum(x.data(), n, &one);
  }
  {
    const OmpThreads limit(2);
    be.sum(x.data(), n, &two);
  }
  CHECK(one == two);  // bitwise: float == on finite values
  CHECK(one == Approx(reference).epsilon(1e-7));
}
