// Bilinear upsampling. The definition matched is PyTorch's upsample_bilinear2d without an
// explicit scale factor (F.interpolate(x, size=(oh, ow), mode="bilinear")): scale = in/out, and
// aten's area_pixel_compute_source_index, i.e. src = dst * (in-1)/(out-1) for
// align_corners=True and src = max((dst + 0.5) * in/out - 0.5, 0) for align_corners=False,
// then h1 = floor(src), h1p = (h1 < in - 1), h1lambda = src - h1, h0lambda = 1 - h1lambda.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

namespace {

// The same definition written out independently, in double.
std::vector<double> naive_upsample(const std::vector<float>& x, int n, int c, int h, int w, int oh,
                                   int ow, bool align) {
  auto source = [&](int dst, int in, int out) {
    if (align) return out > 1 ? double(dst) * (in - 1) / (out - 1) : 0.0;
    const double src = (dst + 0.5) * double(in) / out - 0.5;
    return src < 0.0 ? 0.0 : src;
  };
  std::vector<double> y(size_t(n) * c * oh * ow);
  for (int p = 0; p < n * c; ++p)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        const double sy = source(oy, h, oh), sx = source(ox, w, ow);
        const int y0 = int(std::floor(sy)), x0 = int(std::floor(sx));
        const int y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
        const double ly = sy - y0, lx = sx - x0;
        const float* in = x.data() + size_t(p) * h * w;
        y[(size_t(p) * oh + oy) * ow + ox] =
            (1 - ly) * ((1 - lx) * in[y0 * w + x0] + lx * in[y0 * w + x1]) +
            ly * ((1 - lx) * in[y1 * w + x0] + lx * in[y1 * w + x1]);
      }
  return y;
}

std::vector<float> upsample(const std::vector<float>& x, int n, int c, int h, int w, int oh, int ow,
                            bool align) {
  std::vector<float> y(size_t(n) * c * oh * ow);
  cpu_backend().upsample_bilinear2d_forward(x.data(), y.data(), n, c, h, w, oh, ow, align);
  return y;
}

}  // namespace

TEST_CASE("upsample: 2x2 -> 4x4 by hand, align_corners true and false", "[upsample]") {
  const std::vector<float> x = {0, 1, 2, 3};  // x[i][j] = 2i + j
  // align_corners=True: src = dst / 3, so y[i][j] = (2i + j) / 3 (the 1/3, 2/3 interpolants).
  const std::vector<float> y_true = upsample(x, 1, 1, 2, 2, 4, 4, true);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      CHECK(y_true[i * 4 + j] == Approx((2.0 * i + j) / 3.0).margin(1e-6));
  // align_corners=False: src = 0.5 dst - 0.25 clamped at 0 -> {0, 0.25, 0.75, 1.25 (edge)},
  // so along a row [0, 1] becomes [0, 0.25, 0.75, 1] and y[i][j] = 2 a[i] + a[j].
  const double a[4] = {0.0, 0.25, 0.75, 1.0};
  const std::vector<float> y_false = upsample(x, 1, 1, 2, 2, 4, 4, false);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) CHECK(y_false[i * 4 + j] == Approx(2 * a[i] + a[j]).margin(1e-6));
}

TEST_CASE("upsample: forward matches the written-out definition", "[upsample]") {
  struct Case {
    int h, w, oh, ow;
  };
  for (bool align : {true, false}) {
    for (const Case& k : {Case{5, 5, 8, 8}, Case{2, 3, 4, 7}, Case{4, 4, 8, 8}, Case{8, 6, 5, 3},
                          Case{1, 3, 3, 1}, Case{3, 3, 3, 3}}) {
      const std::vector<float> x = random_values(size_t(2) * 3 * k.h * k.w, 31);
      const std::vector<float> y = upsample(x, 2, 3, k.h, k.w, k.oh, k.ow, align);
      INFO("align " << align << " " << k.h << "x" << k.w << " -> " << k.oh << "x" << k.ow);
      CHECK(max_abs_diff(y, naive_upsample(x, 2, 3, k.h, k.w, k.oh, k.ow, align)) < 2e-6);
    }
  }
  // Same size with align_corners either way is the identity.
  const std::vector<float> x = random_values(2 * 5 * 7, 32);
  CHECK(upsample(x, 1, 2, 5, 7, 5, 7, false) == x);
  CHECK(upsample(x, 1, 2, 5, 7, 5, 7, true) == x);
}

TEST_CASE("upsample: same bits for 1 and 2 OpenMP threads", "[upsample][determinism]") {
  // Above the parallel threshold; odd sizes, up and down, both modes.
  struct Case {
    int h, w, oh, ow;
  };
  const int n = 2, c = 24;
  for (bool align : {true, false}) {
    for (const Case& k : {Case{20, 17, 40, 34}, Case{41, 37, 30, 55}}) {
      const std::vector<float> x = random_values(size_t(n) * c * k.h * k.w, 35);
      const std::vector<float> dy = random_values(size_t(n) * c * k.oh * k.ow, 36);
      auto run = [&](int threads) {
        const OmpThreads limit(threads);
        std::vector<float> y(dy.size()), dx(x.size());
        cpu_backend().upsample_bilinear2d_forward(x.data(), y.data(), n, c, k.h, k.w, k.oh, k.ow,
                                                  align);
        cpu_backend().upsample_bilinear2d_backward(dy.data(), dx.data(), n, c, k.h, k.w, k.oh, k.ow,
                                                   align);
        return std::make_pair(y, dx);
      };
      const auto one = run(1), two = run(2);
      INFO("align " << align << " " << k.h << "x" << k.w << " -> " << k.oh << "x" << k.ow);
      CHECK(same_bits(one.first, two.first));
      CHECK(same_bits(one.second, two.second));
      // and the forward still matches the definition
      const std::vector<double> want = naive_upsample(x, n, c, k.h, k.w, k.oh, k.ow, align);
      CHECK(max_abs_diff(one.first, want) < 1e-5);
    }
  }
}

TEST_CASE("upsample: bad sizes throw", "[upsample]") {
  Backend& be = cpu_backend();
  std::vector<float> buf(64);
  CHECK_THROWS_AS(be.upsample_bilinear2d_forward(buf.data(), buf.data(), 1, 1, 2, 2, 0, 4, true),
                  Error);
  CHECK_THROWS_AS(be.upsample_bilinear2d_forward(buf.data(), buf.data(), 1, -1, 2, 2, 4, 4, true),
                  Error);
  CHECK_THROWS_AS(be.upsample_bilinear2d_backward(nullptr, buf.data(), 1, 1, 2, 2, 4, 4, false),
                  Error);
}
