// Soft Dice (medicaltorch's global form, negative) and mean BCE (PyTorch's BCELoss with the
// log clamped at -100): values by hand, and the gradient checker catching a BCE backward
// that forgets the 1/n (the gradient checks themselves are the op table's: tests/ops).
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

namespace {

double dice_loss(const std::vector<float>& p, const std::vector<float>& t, float smooth) {
  float stats[2], loss;
  cpu_backend().soft_dice_forward(p.data(), t.data(), int64_t(p.size()), smooth, stats, &loss);
  return loss;
}

double bce_loss(const std::vector<float>& p, const std::vector<float>& t) {
  float loss;
  cpu_backend().bce_forward(p.data(), t.data(), int64_t(p.size()), &loss);
  return loss;
}

}  // namespace

TEST_CASE("loss: soft dice by hand", "[loss]") {
  // p = {1, 0.5, 0, 0.25}, t = {1, 1, 0, 0}: sum(p t) = 1.5, sum p + sum t = 1.75 + 2 = 3.75.
  // smooth 1: loss = -(2 * 1.5 + 1) / (3.75 + 1) = -4 / 4.75.
  const std::vector<float> p = {1.f, 0.5f, 0.f, 0.25f}, t = {1.f, 1.f, 0.f, 0.f};
  float stats[2], loss;
  cpu_backend().soft_dice_forward(p.data(), t.data(), 4, 1.f, stats, &loss);
  CHECK(stats[0] == 1.5f);
  CHECK(stats[1] == 3.75f);
  CHECK(loss == Approx(-4.0 / 4.75));
  // Perfect prediction with smooth 0 gives -1; empty truth and empty prediction with smooth 1
  // gives -1 too (smooth / smooth).
  CHECK(dice_loss(t, t, 0.f) == Approx(-1.0));
  const std::vector<float> zeros(4, 0.f);
  CHECK(dice_loss(zeros, zeros, 1.f) == Approx(-1.0));
  CHECK_THROWS_AS(dice_loss(zeros, zeros, 0.f), Error);
}

TEST_CASE("loss: bce by hand, log clamped at -100", "[loss]") {
  // p = {0.5, 0.9, 0, 1}, t = {1, 0, 0, 1}: terms -log 0.5, -log 0.1, 0, 0 -> mean 0.748933.
  CHECK(bce_loss({0.5f, 0.9f, 0.f, 1.f}, {1.f, 0.f, 0.f, 1.f}) ==
        Approx((std::log(2.0) + std::log(10.0)) / 4.0).epsilon(1e-6));
  // p = 0 where t = 1: log 0 clamps to -100.
  CHECK(bce_loss({0.f, 1.f}, {1.f, 0.f}) == Approx(100.0));
  // Soft targets: t = 0.3, p = 0.6 -> -(0.3 log 0.6 + 0.7 log 0.4).
  CHECK(bce_loss({0.6f}, {0.3f}) ==
        Approx(-(0.3 * std::log(0.6) + 0.7 * std::log(0.4))).epsilon(1e-6));
  CHECK_THROWS_AS(bce_loss({1.5f}, {1.f}), Error);
  CHECK_THROWS_AS(bce_loss({NAN}, {1.f}), Error);
  // Backward at the clamp: (p - t) / max(p (1 - p), 1e-12) / n, as PyTorch.
  const std::vector<float> p = {0.f, 0.25f}, t = {1.f, 0.f};
  const float dloss = 2.f;
  std::vector<float> dp(2);
  cpu_backend().bce_backward(p.data(), t.data(), 2, &dloss, dp.data());
  CHECK(dp[0] == Approx(2.0 * -1.0 / 1e-12 / 2.0));
  CHECK(dp[1] == Approx(2.0 * 0.25 / (0.25 * 0.75) / 2.0));
}

TEST_CASE("loss: the gradient checker catches a bce backward missing the 1/n",
          "[loss][gradcheck]") {
  const size_t n = 40;
  const std::vector<float> p = random_values(n, 105, 0.1f, 0.9f);
  const std::vector<float> t = random_values(n, 106, 0.f, 1.f);
  const float dloss = 1.f;
  std::vector<float> dp(n);
  cpu_backend().bce_backward(p.data(), t.data(), int64_t(n), &dloss, dp.data());
  std::vector<double> wrong = to_double(dp);
  for (double& g : wrong) g *= double(n);  // the bug: sum instead of mean
  const GradCheckResult res = check_gradient(
      [&](const std::vector<double>& v) { return bce_loss(to_float(v), t); }, to_double(p), wrong);
  CHECK_FALSE(res.ok());
  CHECK(res.failed > n / 2);
}
