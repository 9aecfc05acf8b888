// Channel concat and split: values by hand (split as concat's gradient is checked by the op
// table: tests/ops).
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
