// The CT window clamp((HU - (WL - WW/2)) / WW, 0, 1) and its 8-bit form, exact at the edges.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "data/window.h"
#include "kernels/backend.h"

using namespace ich::data;

TEST_CASE("window: exact at the edges of the paper's window (WL 40, WW 120)", "[data]") {
  // WL - WW/2 = -20 and WL + WW/2 = 100 are the edges.
  const std::vector<float> hu = {-1000.f, -20.5f, -20.f, -19.f, 40.f, 99.f, 100.f, 100.5f, 3000.f};
  std::vector<float> w(hu.size());
  ich::backend_for(ich::Device::cpu())
      .ct_window(hu.data(), w.data(), int64_t(hu.size()), 40.f, 120.f);
  CHECK(w[0] == 0.0f);
  CHECK(w[1] == 0.0f);
  CHECK(w[2] == 0.0f);
  CHECK(w[3] == Approx(1.0 / 120.0));
  CHECK(w[4] == 0.5f);
  CHECK(w[5] == Approx(119.0 / 120.0));
  CHECK(w[6] == 1.0f);
  CHECK(w[7] == 1.0f);
  CHECK(w[8] == 1.0f);

  std::vector<uint8_t> u8(hu.size());
  window_to_u8(hu.data(), int64_t(hu.size()), 40.f, 120.f, u8.data());
  const std::vector<uint8_t> expected = {0, 0, 0, 2, 128, 253, 255, 255, 255};  // round(255 w)
  CHECK(u8 == expected);
}

TEST_CASE("window: any window maps its edges to 0 and 255 and is monotone", "[data]") {
  for (float wl : {-600.f, 0.f, 40.f, 80.f}) {
    for (float ww : {1.f, 80.f, 120.f, 1500.f}) {
      std::vector<float> hu;
      for (int i = -200; i <= 200; ++i) hu.push_back(wl + ww * 0.005f * float(i));
      std::vector<uint8_t> u8(hu.size());
      window_to_u8(hu.data(), int64_t(hu.size()), wl, ww, u8.data());
      INFO("WL " << wl << " WW " << ww);
      CHECK(u8.front() == 0);
      CHECK(u8[100] == 0);    // HU = WL - WW/2
      CHECK(u8[300] == 255);  // HU = WL + WW/2
      CHECK(u8.back() == 255);
      for (size_t i = 1; i < u8.size(); ++i) REQUIRE(u8[i] >= u8[i - 1]);
    }
  }
}

TEST_CASE("window: a width that is not positive is refused", "[data]") {
  float hu = 0.f;
  uint8_t out = 0;
  CHECK_THROWS_AS(window_to_u8(&hu, 1, 40.f, 0.f, &out), ich::Error);
  CHECK_THROWS_AS(window_to_u8(&hu, 1, 40.f, -5.f, &out), ich::Error);
  CHECK_THROWS_AS(window_to_u8(&hu, 1, NAN, 80.f, &out), ich::Error);
}
