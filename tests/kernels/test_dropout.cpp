// Dropout2d: the mask follows the Philox contract, kept channels are scaled by 1/(1-p), and bad
// arguments throw (the gradient check with the mask fixed is the op table's: tests/ops).
#include <catch2/catch.hpp>
#include <vector>

#include "core/error.h"
#include "core/philox.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

TEST_CASE("dropout: the mask is philox_uniform(seed, offset + n*C + c) >= p", "[dropout]") {
  Backend& be = cpu_backend();
  const int n = 8, c = 64;
  const int64_t hw = 3;
  const float p = 0.4f;
  const uint64_t seed = 99, offset = 1000;
  const std::vector<float> x = random_values(size_t(n) * c * hw, 71);
  std::vector<float> y(x.size()), mask(size_t(n) * c);
  be.dropout2d_forward(x.data(), y.data(), mask.data(), n, c, hw, p, seed, offset);
  int dropped = 0;
  for (int img = 0; img < n; ++img)
    for (int ch = 0; ch < c; ++ch) {
      const size_t k = size_t(img) * c + ch;
      const bool keep = philox_uniform(seed, offset + k) >= p;
      REQUIRE(mask[k] == (keep ? 1.f / (1.f - p) : 0.f));
      dropped += !keep;
      for (int i = 0; i < hw; ++i) REQUIRE(y[k * hw + i] == x[k * hw + i] * mask[k]);
    }
  // 512 channels, p = 0.4: 204.8 expected drops, sd 11.1.
  CHECK(dropped > 150);
  CHECK(dropped < 260);
  // p = 0 keeps everything unchanged.
  be.dropout2d_forward(x.data(), y.data(), mask.data(), n, c, hw, 0.f, seed, offset);
  CHECK(y == x);
}

TEST_CASE("dropout: p below 0 or at least 1 throws", "[dropout]") {
  Backend& be = cpu_backend();
  std::vector<float> b(8), m(2);
  CHECK_THROWS_AS(be.dropout2d_forward(b.data(), b.data(), m.data(), 1, 2, 4, 1.f, 0, 0), Error);
  CHECK_THROWS_AS(be.dropout2d_forward(b.data(), b.data(), m.data(), 1, 2, 4, -0.1f, 0, 0), Error);
  CHECK_THROWS_AS(be.dropout2d_forward(b.data(), b.data(), nullptr, 1, 2, 4, 0.5f, 0, 0), Error);
}
