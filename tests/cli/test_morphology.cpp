// The post-processing of `ichseg eval --closing/--opening` (apps/evaluation.h): dilation and
// erosion with a (2r+1)^2 square, pixels outside the image ignored, against the definition
// written out pixel by pixel.
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <vector>

#include "apps/evaluation.h"

namespace {

// Any (grow) or every (shrink) pixel of the square around each pixel, inside the image.
std::vector<uint8_t> square_by_definition(const std::vector<uint8_t>& mask, int h, int w,
                                          int radius, bool grow) {
  std::vector<uint8_t> out(mask.size());
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) {
      bool any = false, every = true;
      for (int y = r - radius; y <= r + radius; ++y)
        for (int x = c - radius; x <= c + radius; ++x) {
          if (y < 0 || y >= h || x < 0 || x >= w) continue;
          any |= mask[size_t(y) * w + x] != 0;
          every &= mask[size_t(y) * w + x] != 0;
        }
      out[size_t(r) * w + c] = (grow ? any : every) ? 1 : 0;
    }
  return out;
}

}  // namespace

TEST_CASE("cli: dilate and erode take any and every pixel of the square inside the image", "[cli]") {
  std::mt19937 rng(7);
  for (const auto& [h, w] : {std::pair{1, 1}, {5, 9}, {12, 7}, {16, 16}})
    for (int radius : {0, 1, 2, 4})
      for (double density : {0.1, 0.5, 0.9}) {
        INFO(h << "x" << w << " radius " << radius << " density " << density);
        std::bernoulli_distribution set(density);
        std::vector<uint8_t> mask(size_t(h) * w);
        for (auto& v : mask) v = set(rng) ? 1 : 0;
        std::vector<uint8_t> grown = mask, shrunk = mask;
        ich::app::dilate(grown, h, w, radius);
        ich::app::erode(shrunk, h, w, radius);
        CHECK(grown == square_by_definition(mask, h, w, radius, true));
        CHECK(shrunk == square_by_definition(mask, h, w, radius, false));
      }
}
