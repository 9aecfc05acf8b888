// Max pooling. The definition matched is PyTorch's CPU max_pool2d_with_indices
// (aten/src/ATen/native/cpu/MaxPoolKernel.cpp, contiguous NCHW): floor mode, padding as -inf,
// windows scanned row-major, `if (val > maxval || isnan(val))` replaces the maximum, so ties
// keep the first maximum and the last NaN of a window wins.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

namespace {

Pool2dShape make_pool(int n, int c, int h, int w, int k, int stride, int pad) {
  Pool2dShape s;
  s.n = n, s.c = c, s.h = h, s.w = w, s.kh = k, s.kw = k;
  s.stride_h = stride, s.stride_w = stride, s.pad_h = pad, s.pad_w = pad;
  return s;
}

size_t out_size(const Pool2dShape& s) {
  return size_t(s.n) * s.c * s.out_h() * s.out_w();
}

std::vector<float> pool_forward(const std::vector<float>& x, const Pool2dShape& s,
                                std::vector<int32_t>* argmax = nullptr) {
  std::vector<float> y(out_size(s));
  std::vector<int32_t> idx(out_size(s));
  cpu_backend().max_pool2d_forward(x.data(), y.data(), idx.data(), s);
  if (argmax) *argmax = idx;
  return y;
}

}  // namespace

TEST_CASE("pool2d: 2x2 stride 2 by hand, ties keep the first maximum", "[pool2d]") {
  // x (1, 1, 4, 4)     windows            max  argmax (index in the plane)
  //   1 3 | 3  0       [1 3; 2 3]         3    1  (first 3, at (0, 1))
  //   2 3 | 1  1       [3 0; 1 1]         3    2
  //   5 5 | 0 -1       [5 5; 5 4]         5    8  (first 5, at (2, 0))
  //   5 4 |-2 -1       [0 -1; -2 -1]      0    10
  const std::vector<float> x = {1, 3, 3, 0, 2, 3, 1, 1, 5, 5, 0, -1, 5, 4, -2, -1};
  std::vector<int32_t> argmax;
  const std::vector<float> y = pool_forward(x, make_pool(1, 1, 4, 4, 2, 2, 0), &argmax);
  CHECK(y == std::vector<float>{3, 3, 5, 0});
  CHECK(argmax == std::vector<int32_t>{1, 2, 8, 10});
}

TEST_CASE("pool2d: padding counts as -inf", "[pool2d]") {
  // x = -(1..9) as 3x3, kernel 3, stride 2, pad 1 -> 2x2. Window (0, 0) covers rows/cols -1..1,
  // i.e. {-1, -2, -4, -5}: the maximum is -1 (a zero padding would give 0).
  std::vector<float> x(9);
  for (int i = 0; i < 9; ++i) x[i] = -float(i + 1);
  std::vector<int32_t> argmax;
  const std::vector<float> y = pool_forward(x, make_pool(1, 1, 3, 3, 3, 2, 1), &argmax);
  CHECK(y == std::vector<float>{-1, -2, -4, -5});
  CHECK(argmax == std::vector<int32_t>{0, 1, 3, 4});
  for (float& v : x) v = -v;  // 1..9: maxima 5, 6, 8, 9
  const std::vector<float> y2 = pool_forward(x, make_pool(1, 1, 3, 3, 3, 2, 1), &argmax);
  CHECK(y2 == std::vector<float>{5, 6, 8, 9});
  CHECK(argmax == std::vector<int32_t>{4, 5, 7, 8});
}

TEST_CASE("pool2d: NaN propagates, the last NaN's index is kept", "[pool2d]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // One 2x2 window: 1, NaN, 2, NaN -> NaN at index 3.
  const std::vector<float> x = {1.f, nan, 2.f, nan};
  std::vector<int32_t> argmax;
  const std::vector<float> y = pool_forward(x, make_pool(1, 1, 2, 2, 2, 2, 0), &argmax);
  CHECK(std::isnan(y[0]));
  CHECK(argmax[0] == 3);
}

TEST_CASE("pool2d: forward matches the scalar definition, wide rows with ties and NaN",
          "[pool2d]") {
  // The kernel vectorises over the output columns whose window lies inside the image; rows
  // wider than a vector, every padding and stride the U-Net and tests use, values from a
  // small set (many ties) and a few NaN must give the definition's values and indices.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    int h, w, k, stride, pad;
  };
  for (const Case& k : {Case{6, 70, 2, 2, 0}, Case{7, 67, 3, 2, 1}, Case{5, 41, 3, 1, 1},
                        Case{9, 53, 2, 1, 0}, Case{4, 38, 3, 3, 1}, Case{3, 3, 3, 2, 1}}) {
    const Pool2dShape s = make_pool(2, 3, k.h, k.w, k.k, k.stride, k.pad);
    std::vector<float> x = random_values(size_t(2) * 3 * k.h * k.w, 71, 0.f, 4.f);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::floor(x[i]);  // ties
    for (size_t i = 5; i < x.size(); i += 37) x[i] = nan;
    std::vector<int32_t> idx;
    const std::vector<float> y = pool_forward(x, s, &idx);
    const int oh = s.out_h(), ow = s.out_w();
    for (int p = 0; p < 2 * 3; ++p)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          float best = -std::numeric_limits<float>::infinity();
          int best_index = -1;
          for (int yy = oy * k.stride - k.pad; yy < oy * k.stride - k.pad + k.k; ++yy)
            for (int xx = ox * k.stride - k.pad; xx < ox * k.stride - k.pad + k.k; ++xx) {
              if (yy < 0 || yy >= k.h || xx < 0 || xx >= k.w) continue;
              const float v = x[(size_t(p) * k.h + yy) * k.w + xx];
              if (v > best || std::isnan(v)) {  // values are >= 0: the first one is taken
                best = v;
                best_index = yy * k.w + xx;
              }
            }
          const size_t o = (size_t(p) * oh + oy) * ow + ox;
          INFO(k.h << "x" << k.w << " k" << k.k << " s" << k.stride << " p" << k.pad << " plane "
                   << p << " (" << oy << ", " << ox << ")");
          if (std::isnan(best)) {
            CHECK(std::isnan(y[o]));
          } else {
            CHECK(y[o] == best);
          }
          CHECK(idx[o] == best_index);
        }
  }
}

TEST_CASE("pool2d: backward routes through argmax and accumulates overlaps", "[pool2d]") {
  Backend& be = cpu_backend();
  // 3x3 kernel, stride 1 over a 3x4 image whose maximum 9 sits in both windows.
  const std::vector<float> x = {0, 1, 2, 0, 3, 9, 4, 1, 2, 0, 1, 0};
  const Pool2dShape s = make_pool(1, 1, 3, 4, 3, 1, 0);
  std::vector<int32_t> argmax;
  const std::vector<float> y = pool_forward(x, s, &argmax);
  CHECK(y == std::vector<float>{9, 9});
  const std::vector<float> dy = {0.5f, 0.25f};
  std::vector<float> dx(12, 7.f);
  be.max_pool2d_backward(dy.data(), argmax.data(), dx.data(), s);
  std::vector<float> expected(12, 0.f);
  expected[5] = 0.75f;
  CHECK(dx == expected);
}

TEST_CASE("pool2d: backward passes the gradient check (ties skipped)", "[pool2d]") {
  Backend& be = cpu_backend();
  for (const Pool2dShape& s : {make_pool(2, 3, 6, 6, 2, 2, 0), make_pool(1, 2, 7, 5, 3, 2, 1),
                               make_pool(1, 1, 5, 6, 3, 1, 1)}) {
    const std::vector<float> x = random_values(size_t(s.n) * s.c * s.h * s.w, 21, -3.f, 3.f);
    const std::vector<float> r = random_values(out_size(s), 22);
    std::vector<int32_t> argmax;
    pool_forward(x, s, &argmax);
    std::vector<float> dx(x.size());
    be.max_pool2d_backward(r.data(), argmax.data(), dx.data(), s);
    GradCheckOptions opt;
    opt.step = 1e-3;
    // A coordinate is a kink when it is within 2.5 steps of the maximum of a window holding it
    // (while not the maximum itself): moving it by a step could move that window's argmax.
    std::vector<char> kink(x.size(), 0);
    const int oh = s.out_h(), ow = s.out_w();
    for (int nc = 0; nc < s.n * s.c; ++nc)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          const int best = argmax[(size_t(nc) * oh + oy) * ow + ox] + nc * s.h * s.w;
          bool near_tie = false;
          for (int i = 0; i < s.kh; ++i)
            for (int j = 0; j < s.kw; ++j) {
              const int yy = oy * s.stride_h - s.pad_h + i, xx = ox * s.stride_w - s.pad_w + j;
              if (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w) continue;
              const int idx = (nc * s.h + yy) * s.w + xx;
              if (idx != best && x[best] - x[idx] < 2.5 * opt.step) {
                kink[idx] = 1;
                near_tie = true;
              }
            }
          if (near_tie) kink[best] = 1;
        }
    opt.is_kink = [&](size_t i) { return kink[i] != 0; };
    const GradCheckResult res = check_weighted_gradient(
        r, [&](const std::vector<float>& xv) { return pool_forward(xv, s); }, x, dx, opt);
    expect_gradient_ok(res);
    CHECK(res.skipped < res.checked / 8);
  }
}

TEST_CASE("pool2d: bad shapes throw", "[pool2d]") {
  Backend& be = cpu_backend();
  std::vector<float> buf(64);
  std::vector<int32_t> idx(64);
  CHECK_THROWS_AS(
      be.max_pool2d_forward(buf.data(), buf.data(), idx.data(), make_pool(1, 1, 4, 4, 2, 0, 0)),
      Error);
  CHECK_THROWS_AS(
      be.max_pool2d_forward(buf.data(), buf.data(), idx.data(), make_pool(1, 1, 4, 4, 2, 2, 2)),
      Error);  // pad > kernel / 2
  CHECK_THROWS_AS(
      be.max_pool2d_forward(buf.data(), buf.data(), idx.data(), make_pool(1, 1, 1, 1, 2, 2, 0)),
      Error);  // out_h would be 0
  CHECK_THROWS_AS(
      be.max_pool2d_forward(buf.data(), buf.data(), nullptr, make_pool(1, 1, 4, 4, 2, 2, 0)),
      Error);
  std::vector<int32_t> bad_idx(4, 99);
  CHECK_THROWS_AS(be.max_pool2d_backward(buf.data(), bad_idx.data(), buf.data(),
                                         make_pool(1, 1, 4, 4, 2, 2, 0)),
                  Error);
}
