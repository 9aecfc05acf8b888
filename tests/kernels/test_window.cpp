// CT windowing: out = clamp((hu - (wl - ww/2)) / ww, 0, 1).
#include <catch2/catch.hpp>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

TEST_CASE("window: brain window WL 40 WW 120 by hand", "[window]") {
  Backend& be = cpu_backend();
  // The window spans [-20, 100] HU: -1000 (air) -> 0, -20 -> 0, 40 -> 0.5, 70 -> 0.75, 100 -> 1,
  // 1000 (bone) -> 1.
  const std::vector<float> hu = {-1000.f, -20.f, 40.f, 70.f, 100.f, 1000.f, 10.f};
  const std::vector<float> expected = {0.f, 0.f, 0.5f, 0.75f, 1.f, 1.f, 0.25f};
  std::vector<float> out(hu.size(), -1.f);
  be.ct_window(hu.data(), out.data(), int64_t(hu.size()), 40.f, 120.f);
  for (size_t i = 0; i < hu.size(); ++i) CHECK(out[i] == Approx(expected[i]).margin(1e-6));

  const std::vector<int16_t> hu16 = {-1000, -20, 40, 70, 100, 1000, 10};
  std::vector<float> out16(hu16.size(), -1.f);
  be.ct_window_i16(hu16.data(), out16.data(), int64_t(hu16.size()), 40.f, 120.f);
  for (size_t i = 0; i < hu16.size(); ++i) CHECK(out16[i] == out[i]);

  CHECK_THROWS_AS(be.ct_window(hu.data(), out.data(), 3, 40.f, 0.f), Error);
  CHECK_THROWS_AS(be.ct_window(hu.data(), out.data(), -3, 40.f, 120.f), Error);
}
