// Channel concat and split: values, and split as concat's gradient.
#include <catch2/catch.hpp>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

TEST_CASE("concat: values by hand", "[concat]") {
  Backend& be = cpu_backend();
  // n=2, hw=2: a has 1 channel, b has 2.
  const std::vector<float> a = {1, 2, 3, 4};                      // (2, 1, 2)
  const std::vector<float> b = {10, 11, 12, 13, 14, 15, 16, 17};  // (2, 2, 2)
  std::vector<float> y(12);
  be.concat_channels(a.data(), b.data(), y.data(), 2, 1, 2, 2);
  CHECK(y == std::vector<float>{1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17});
  std::vector<float> a2(4), b2(8);
  be.split_channels(y.data(), a2.data(), b2.data(), 2, 1, 2, 2);
  CHECK(a2 == a);
  CHECK(b2 == b);
  std::vector<float> b3(8, 0.f);
  be.split_channels(y.data(), nullptr, b3.data(), 2, 1, 2, 2);  // a skipped
  CHECK(b3 == b);
  CHECK_THROWS_AS(be.concat_channels(a.data(), b.data(), y.data(), 2, -1, 2, 2), Error);
  CHECK_THROWS_AS(be.concat_channels(a.data(), nullptr, y.data(), 2, 1, 2, 2), Error);
}

TEST_CASE("concat: split is the gradient of concat", "[concat]") {
  Backend& be = cpu_backend();
  const int n = 2, ca = 3, cb = 2;
  const int64_t hw = 5;
  const std::vector<float> a = random_values(n * ca * hw, 81), b = random_values(n * cb * hw, 82);
  const std::vector<float> r = random_values(n * (ca + cb) * hw, 83);
  std::vector<float> da(a.size()), db(b.size());
  be.split_channels(r.data(), da.data(), db.data(), n, ca, cb, hw);
  auto loss = [&](const std::vector<float>& av, const std::vector<float>& bv) {
    std::vector<float> y(r.size());
    be.concat_channels(av.data(), bv.data(), y.data(), n, ca, cb, hw);
    return weighted_sum(r, y);
  };
  const GradCheckResult ra =
      check_gradient([&](const std::vector<double>& v) { return loss(to_float(v), b); },
                     to_double(a), to_double(da));
  const GradCheckResult rb =
      check_gradient([&](const std::vector<double>& v) { return loss(a, to_float(v)); },
                     to_double(b), to_double(db));
  INFO(ra.first_failure << " / " << rb.first_failure);
  CHECK(ra.ok());
  CHECK(rb.ok());
}
