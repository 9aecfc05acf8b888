// ReLU and sigmoid: values by hand, NaN, saturation and bad arguments (their gradient
// checks are the op table's: tests/ops).
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

TEST_CASE("activation: relu values, NaN kept", "[activation]") {
  Backend& be = cpu_backend();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {-2.f, -0.f, 0.f, 0.5f, 3.f, nan};
  std::vector<float> y(x.size());
  be.relu_forward(x.data(), y.data(), int64_t(x.size()));
  CHECK(y[0] == 0.f);
  CHECK(y[1] == 0.f);
  CHECK(y[3] == 0.5f);
  CHECK(y[4] == 3.f);
  CHECK(std::isnan(y[5]));
  const std::vector<float> dy = {1, 2, 3, 4, 5, 6};
  std::vector<float> dx(x.size());
  be.relu_backward(dy.data(), x.data(), dx.data(), int64_t(x.size()));
  CHECK(dx == std::vector<float>{0, 0, 0, 4, 5, 0});  // dx = dy * (x > 0)
}

TEST_CASE("activation: relu keeps NaN inside the vectorised body", "[activation]") {
  Backend& be = cpu_backend();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = random_values(1003, 7, -1.f, 1.f);
  for (size_t i : {size_t(0), size_t(17), size_t(500), size_t(1002)}) x[i] = nan;
  x[33] = -0.f;
  std::vector<float> y(x.size()), dx(x.size());
  const std::vector<float> dy(x.size(), 1.5f);
  be.relu_forward(x.data(), y.data(), int64_t(x.size()));
  be.relu_backward(dy.data(), x.data(), dx.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("i = " << i << " x = " << x[i]);
    if (std::isnan(x[i])) {
      CHECK(std::isnan(y[i]));
      CHECK(dx[i] == 0.f);
    } else {
      CHECK(y[i] == (x[i] < 0.f ? 0.f : x[i]));
      CHECK(dx[i] == (x[i] > 0.f ? 1.5f : 0.f));
    }
  }
}

TEST_CASE("activation: sigmoid values, saturation, bad arguments", "[activation]") {
  Backend& be = cpu_backend();
  // sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; large |x| saturates without NaN.
  const std::vector<float> x = {0.f, std::log(3.f), -std::log(3.f), 100.f, -100.f};
  std::vector<float> y(x.size());
  be.sigmoid_forward(x.data(), y.data(), int64_t(x.size()));
  CHECK(y[0] == Approx(0.5f));
  CHECK(y[1] == Approx(0.75f));
  CHECK(y[2] == Approx(0.25f));
  CHECK(y[3] == 1.f);
  CHECK(y[4] == Approx(0.f).margin(1e-40));
  CHECK_THROWS_AS(be.sigmoid_forward(nullptr, y.data(), 3), Error);
  CHECK_THROWS_AS(be.relu_forward(x.data(), y.data(), -1), Error);
}
