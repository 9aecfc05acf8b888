// Philox4x32-10 and the random fills built on it (the contract of core/philox.h).
#include <catch2/catch.hpp>
#include <cmath>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/philox.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

TEST_CASE("philox: Random123 known answer for counter 0, key 0", "[random]") {
  // kat_vectors of Random123: philox4x32 10 00000000 00000000 00000000 00000000 00000000 00000000
  //   -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8
  const Philox4 r = philox4x32_10(0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);
}

TEST_CASE("philox: uniform draws follow the counter contract", "[random]") {
  Backend& be = cpu_backend();
  const uint64_t seed = 0x1234'5678'9abcULL;
  std::vector<float> whole(40), tail(25);
  be.uniform(whole.data(), 40, seed, 0, -2.f, 3.f);
  be.uniform(tail.data(), 25, seed, 15, -2.f, 3.f);
  for (int i = 0; i < 25; ++i) CHECK(tail[i] == whole[15 + i]);  // offset o, element i == o + i
  for (int i = 0; i < 40; ++i) {
    CHECK(whole[i] == -2.f + 5.f * philox_uniform(seed, i));
    CHECK(whole[i] >= -2.f);
    CHECK(whole[i] < 3.f);
  }
  std::vector<float> other(40);
  be.uniform(other.data(), 40, seed + 1, 0, -2.f, 3.f);
  int equal = 0;
  for (int i = 0; i < 40; ++i) equal += other[i] == whole[i];
  CHECK(equal < 3);  // another seed is another stream
  std::vector<float> again(40);
  be.uniform(again.data(), 40, seed, 0, -2.f, 3.f);
  CHECK(again == whole);  // same seed, same numbers
}

namespace {

// The sample mean and the unbiased sample variance, in double.
std::pair<double, double> mean_and_variance(const std::vector<float>& x) {
  double mean = 0.0, sq = 0.0;
  for (float v : x) mean += v;
  mean /= double(x.size());
  for (float v : x) sq += (v - mean) * (v - mean);
  return {mean, sq / double(x.size() - 1)};
}

}  // namespace

TEST_CASE("philox: uniform mean and variance over 1e5 draws", "[random]") {
  Backend& be = cpu_backend();
  const int n = 100000;
  std::vector<float> u(n);
  be.uniform(u.data(), n, 7, 0, 0.f, 1.f);
  for (float v : u) {
    REQUIRE(v >= 0.f);
    REQUIRE(v < 1.f);
  }
  const auto [mean, var] = mean_and_variance(u);
  // Standard error of the mean: sqrt(1/12 / 1e5) = 9.1e-4; 5 sigma bounds.
  CHECK(std::fabs(mean - 0.5) < 4.6e-3);
  // Var of the sample variance of U(0,1): (1/80 - 1/144) / n -> sd 2.4e-4.
  CHECK(std::fabs(var - 1.0 / 12.0) < 1.2e-3);
}

TEST_CASE("philox: normal mean and standard deviation over 1e5 draws", "[random]") {
  Backend& be = cpu_backend();
  const int n = 100000;
  std::vector<float> z(n);
  be.normal(z.data(), n, 11, 1000, 0.f, 1.f);
  for (float v : z) REQUIRE(std::isfinite(v));
  const auto [mean, var] = mean_and_variance(z);
  const double sd = std::sqrt(var);
  CHECK(std::fabs(mean) < 0.016);      // 5 standard errors (1 / sqrt(1e5) = 3.2e-3)
  CHECK(std::fabs(sd - 1.0) < 0.012);  // sd of the sample sd ~ 1 / sqrt(2n) = 2.2e-3
  // Tails: P(|z| > 3) = 0.0027 for a true normal.
  int beyond3 = 0;
  for (float v : z) beyond3 += std::fabs(v) > 3.f;
  CHECK(beyond3 > 150);
  CHECK(beyond3 < 400);
  // mean/std are applied as mean + std * z, element by element.
  std::vector<float> shifted(100);
  be.normal(shifted.data(), 100, 11, 1000, 5.f, 2.f);
  for (int i = 0; i < 100; ++i) CHECK(shifted[i] == 5.f + 2.f * z[i]);
}

TEST_CASE("philox: fill and bad arguments", "[random]") {
  Backend& be = cpu_backend();
  std::vector<float> x(100000, 1.f);
  be.fill(x.data(), int64_t(x.size()), -0.25f);
  for (float v : x) REQUIRE(v == -0.25f);
  CHECK_THROWS_AS(be.fill(x.data(), -1, 0.f), Error);
  CHECK_THROWS_AS(be.fill(nullptr, 3, 0.f), Error);
  CHECK_THROWS_AS(be.uniform(x.data(), 3, 1, 0, 1.f, 0.f), Error);
  CHECK_THROWS_AS(be.normal(x.data(), 3, 1, 0, 0.f, -1.f), Error);
}
