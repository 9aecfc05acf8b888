// Batch norm 2d: train forward against a double reference (biased variance to normalise,
// unbiased for the running variance, as PyTorch), eval forward, and bit-identical results for
// 1 and 2 OpenMP threads (the gradient checks of x, gamma and beta are the op table's).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

namespace {

struct BnOut {
  std::vector<float> y, running_mean, running_var, save_mean, save_invstd;
};

BnOut bn_train(const std::vector<float>& x, const std::vector<float>& gamma,
               const std::vector<float>& beta, int n, int c, int64_t hw, float momentum = 0.1f,
               float eps = 1e-5f) {
  BnOut o;
  o.y.resize(x.size());
  o.running_mean.assign(c, 0.5f);
  o.running_var.assign(c, 2.0f);
  o.save_mean.resize(c);
  o.save_invstd.resize(c);
  cpu_backend().batch_norm2d_forward_train(
      x.data(), o.y.data(), gamma.data(), beta.data(), o.running_mean.data(), o.running_var.data(),
      o.save_mean.data(), o.save_invstd.data(), n, c, hw, momentum, eps);
  return o;
}

}  // namespace

TEST_CASE("batchnorm: train forward by hand", "[batchnorm]") {
  // n=2, c=1, hw=2: x = {1, 2 | 3, 4}: mean 2.5, biased var 1.25, unbiased var 5/3.
  const std::vector<float> x = {1, 2, 3, 4}, gamma = {2.f}, beta = {0.5f};
  const BnOut o = bn_train(x, gamma, beta, 2, 1, 2, 0.1f, 1e-5f);
  const double invstd = 1.0 / std::sqrt(1.25 + 1e-5);
  CHECK(o.save_mean[0] == Approx(2.5));
  CHECK(o.save_invstd[0] == Approx(invstd).epsilon(1e-6));
  for (int i = 0; i < 4; ++i)
    CHECK(o.y[i] == Approx((x[i] - 2.5) * invstd * 2.0 + 0.5).epsilon(1e-6));
  // running = 0.9 running + 0.1 batch, starting from mean 0.5 and var 2.
  CHECK(o.running_mean[0] == Approx(0.9 * 0.5 + 0.1 * 2.5).epsilon(1e-6));
  CHECK(o.running_var[0] == Approx(0.9 * 2.0 + 0.1 * (5.0 / 3.0)).epsilon(1e-6));
}

TEST_CASE("batchnorm: train forward against a double reference", "[batchnorm]") {
  const int n = 3, c = 4;
  const int64_t hw = 10;
  const std::vector<float> x = random_values(n * c * hw, 41, -2.f, 3.f);
  const std::vector<float> gamma = random_values(c, 42, 0.5f, 1.5f);
  const std::vector<float> beta = random_values(c, 43);
  const BnOut o = bn_train(x, gamma, beta, n, c, hw, 0.2f, 1e-3f);
  const int64_t m = n * hw;
  for (int ch = 0; ch < c; ++ch) {
    double mean = 0.0, sq = 0.0;
    for (int img = 0; img < n; ++img)
      for (int i = 0; i < hw; ++i) mean += x[(img * c + ch) * hw + i];
    mean /= m;
    for (int img = 0; img < n; ++img)
      for (int i = 0; i < hw; ++i) sq += std::pow(x[(img * c + ch) * hw + i] - mean, 2);
    const double invstd = 1.0 / std::sqrt(sq / m + 1e-3);
    CHECK(o.save_mean[ch] == Approx(mean).epsilon(1e-6));
    CHECK(o.save_invstd[ch] == Approx(invstd).epsilon(1e-6));
    CHECK(o.running_mean[ch] == Approx(0.8 * 0.5 + 0.2 * mean).epsilon(1e-6));
    CHECK(o.running_var[ch] == Approx(0.8 * 2.0 + 0.2 * sq / (m - 1)).epsilon(1e-6));
    for (int img = 0; img < n; ++img)
      for (int i = 0; i < hw; ++i) {
        const size_t k = (img * c + ch) * hw + i;
        CHECK(o.y[k] == Approx((x[k] - mean) * invstd * gamma[ch] + beta[ch]).margin(1e-5));
      }
  }
}

TEST_CASE("batchnorm: statistics of data far from zero (mean 1e6, std 1)", "[batchnorm]") {
  // E[x^2] - E[x]^2 cancels here: E[x^2] = 1e12, and even in double it is 4-11% off the
  // variance on data like this (measured on three such channels); shifted sums must not be.
  const int n = 2, c = 3;
  const int64_t hw = 10000;
  std::vector<float> x = random_values(n * c * hw, 60, -1.7f, 1.7f);  // std ~1
  for (size_t i = 0; i < x.size(); ++i) x[i] += 1e6f + 1000.f * float((i / hw) % c);
  const std::vector<float> gamma = {1.f, 2.f, 0.5f}, beta = {0.f, 1.f, -1.f};
  const BnOut o = bn_train(x, gamma, beta, n, c, hw, 0.1f, 1e-5f);
  const int64_t m = n * hw;
  for (int ch = 0; ch < c; ++ch) {
    double mean = 0.0, sq = 0.0;  // two passes in double: the reference
    for (int img = 0; img < n; ++img)
      for (int64_t i = 0; i < hw; ++i) mean += x[(img * c + ch) * hw + i];
    mean /= double(m);
    for (int img = 0; img < n; ++img)
      for (int64_t i = 0; i < hw; ++i) sq += std::pow(x[(img * c + ch) * hw + i] - mean, 2);
    const double var = sq / double(m);
    INFO("channel " << ch << " mean " << mean << " var " << var);
    CHECK(o.save_mean[ch] == Approx(mean).epsilon(1e-7));
    CHECK(o.save_invstd[ch] == Approx(1.0 / std::sqrt(var + 1e-5)).epsilon(1e-5));
    CHECK(o.running_var[ch] == Approx(0.9 * 2.0 + 0.1 * sq / double(m - 1)).epsilon(1e-5));
    // y is normalised around the stored float mean (as PyTorch): x - mean is exact there.
    for (int img = 0; img < n; ++img)
      for (int64_t i = 0; i < hw; i += 97) {
        const size_t k = (img * c + ch) * hw + i;
        const double want =
            (double(x[k]) - o.save_mean[ch]) * o.save_invstd[ch] * gamma[ch] + beta[ch];
        CHECK(o.y[k] == Approx(want).margin(1e-5));
      }
  }
}

TEST_CASE("batchnorm: eval forward uses the running statistics", "[batchnorm]") {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};  // n=1, c=2, hw=3
  const std::vector<float> gamma = {1.f, 3.f}, beta = {0.f, -1.f};
  const std::vector<float> rm = {2.f, 0.f}, rv = {4.f, 0.25f};
  std::vector<float> y(6);
  cpu_backend().batch_norm2d_forward_eval(x.data(), y.data(), gamma.data(), beta.data(), rm.data(),
                                          rv.data(), 1, 2, 3, 0.f + 1e-5f);
  const double s0 = 1.0 / std::sqrt(4.0 + 1e-5), s1 = 1.0 / std::sqrt(0.25 + 1e-5);
  for (int i = 0; i < 3; ++i) CHECK(y[i] == Approx((x[i] - 2.0) * s0).epsilon(1e-6));
  for (int i = 3; i < 6; ++i) CHECK(y[i] == Approx(x[i] * s1 * 3.0 - 1.0).epsilon(1e-6));
}

TEST_CASE("batchnorm: same bits for 1 and 2 OpenMP threads", "[batchnorm][determinism]") {
  const int n = 4, c = 8;
  const int64_t hw = 4096;
  const std::vector<float> x = random_values(n * c * hw, 48, -1.f, 5.f);
  const std::vector<float> gamma = random_values(c, 49), beta = random_values(c, 50);
  const std::vector<float> dy = random_values(n * c * hw, 51);
  auto run = [&](int threads) {
    const OmpThreads limit(threads);
    BnOut o = bn_train(x, gamma, beta, n, c, hw);
    std::vector<float> dx(x.size()), dgamma(c), dbeta(c);
    cpu_backend().batch_norm2d_backward(dy.data(), x.data(), gamma.data(), o.save_mean.data(),
                                        o.save_invstd.data(), dx.data(), dgamma.data(),
                                        dbeta.data(), n, c, hw);
    std::vector<std::vector<float>> all = {
        o.y, o.running_mean, o.running_var, o.save_mean, o.save_invstd, dx, dgamma, dbeta};
    return all;
  };
  const auto one = run(1), two = run(2);
  for (size_t k = 0; k < one.size(); ++k) {
    INFO("output " << k);
    REQUIRE(one[k].size() == two[k].size());
    CHECK(same_bits(one[k], two[k]));
  }
}

TEST_CASE("batchnorm: bad arguments throw", "[batchnorm]") {
  Backend& be = cpu_backend();
  std::vector<float> b(16, 1.f);
  float* p = b.data();
  // One value per channel cannot be normalised in training (PyTorch refuses it too).
  CHECK_THROWS_AS(be.batch_norm2d_forward_train(p, p, p, p, p, p, p, p, 1, 2, 1, 0.1f, 1e-5f),
                  Error);
  CHECK_THROWS_AS(be.batch_norm2d_forward_train(p, p, nullptr, p, p, p, p, p, 2, 2, 2, 0.1f, 1e-5f),
                  Error);
  CHECK_THROWS_AS(be.batch_norm2d_forward_eval(p, p, p, p, p, p, 0, 2, 2, 1e-5f), Error);
  CHECK_THROWS_AS(be.batch_norm2d_backward(p, p, p, p, p, p, p, p, 2, -2, 2), Error);
}
