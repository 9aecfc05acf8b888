// im2col / col2im and the im2col + GEMM convolution, against a naive direct convolution
// (the reference of the reference), with finite-difference checks of both backwards.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/conv_algo.h"
#include "kernels_test_util.h"
#include "ops/op_case.h"

using namespace ich;
using namespace ich::test;

namespace {

// The direct convolution's terms, seven loops: f(y index, x index, w index) for every tap that
// falls inside the image, in the order n, k, oy, ox, c, i, j.
template <typename F>
void for_each_tap(const Conv2dShape& s, F f) {
  const int oh = s.out_h(), ow = s.out_w();
  for (int n = 0; n < s.n; ++n)
    for (int k = 0; k < s.k; ++k)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox)
          for (int c = 0; c < s.c; ++c)
            for (int i = 0; i < s.kh; ++i)
              for (int j = 0; j < s.kw; ++j) {
                const int yy = oy * s.stride_h - s.pad_h + i;
                const int xx = ox * s.stride_w - s.pad_w + j;
                if (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w) continue;
                f(((size_t(n) * s.k + k) * oh + oy) * ow + ox,
                  ((size_t(n) * s.c + c) * s.h + yy) * s.w + xx,
                  ((size_t(k) * s.c + c) * s.kh + i) * s.kw + j);
              }
}

// Direct cross-correlation in double: y (n, k, oh, ow).
std::vector<double> naive_conv2d(const std::vector<float>& x, const std::vector<float>& w,
                                 const std::vector<float>* bias, const Conv2dShape& s) {
  const size_t plane = size_t(s.out_h()) * s.out_w();
  std::vector<double> y(size_t(s.n) * s.k * plane, 0.0);
  for (size_t o = 0; o < y.size(); ++o) y[o] = bias ? (*bias)[(o / plane) % s.k] : 0.0;
  for_each_tap(s, [&](size_t yi, size_t xi, size_t wi) { y[yi] += double(x[xi]) * double(w[wi]); });
  return y;
}

Conv2dShape make_shape(int n, int c, int h, int w, int k, int kh, int kw, int pad_h, int pad_w,
                       int stride_h, int stride_w) {
  Conv2dShape s;
  s.n = n, s.c = c, s.h = h, s.w = w, s.k = k, s.kh = kh, s.kw = kw;
  s.pad_h = pad_h, s.pad_w = pad_w, s.stride_h = stride_h, s.stride_w = stride_w;
  return s;
}

// Odd sizes, stride 2, pad 0/1/2, non-square kernels and strides, k != c.
std::vector<Conv2dShape> test_shapes() {
  return {make_shape(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1), make_shape(1, 2, 9, 8, 5, 3, 3, 0, 0, 2, 2),
          make_shape(2, 1, 5, 5, 3, 5, 5, 2, 2, 1, 1), make_shape(3, 4, 6, 7, 2, 1, 1, 0, 0, 1, 1),
          make_shape(1, 3, 8, 8, 6, 3, 3, 2, 2, 2, 2), make_shape(2, 2, 7, 9, 3, 2, 3, 0, 1, 1, 2)};
}

size_t x_size(const Conv2dShape& s) {
  return size_t(s.n) * s.c * s.h * s.w;
}
size_t w_size(const Conv2dShape& s) {
  return size_t(s.k) * s.c * s.kh * s.kw;
}
size_t y_size(const Conv2dShape& s) {
  return size_t(s.n) * s.k * s.out_h() * s.out_w();
}

// x, w, bias and dy for s, from seed .. seed + 3.
struct ConvData {
  std::vector<float> x, w, bias, dy;
};

ConvData conv_data(const Conv2dShape& s, uint64_t seed) {
  return {random_values(x_size(s), seed), random_values(w_size(s), seed + 1),
          random_values(size_t(s.k), seed + 2), random_values(y_size(s), seed + 3)};
}

// The forward (with bias), backward data and, when asked, backward weight (into a dw of 7s,
// which it overwrites) with `threads` OpenMP threads.
struct ConvResults {
  std::vector<float> y, dx, dw;
};

ConvResults run_passes(const ConvData& d, const Conv2dShape& s, int threads, bool weight) {
  const OmpThreads limit(threads);
  Backend& be = cpu_backend();
  ConvResults o{std::vector<float>(y_size(s)), std::vector<float>(x_size(s)),
                std::vector<float>(w_size(s), 7.0f)};
  std::vector<float> ws(be.conv2d_workspace_floats(s));
  be.conv2d_forward(d.x.data(), d.w.data(), d.bias.data(), o.y.data(), s, ws.data());
  be.conv2d_backward_data(d.dy.data(), d.w.data(), o.dx.data(), s, ws.data());
  if (weight) be.conv2d_backward_weight(d.x.data(), d.dy.data(), o.dw.data(), s, ws.data());
  return o;
}

// x, w and an upstream r for a gradient check on s, from seed, seed + 1, seed + 2.
struct ConvInputs {
  std::vector<float> x, w, r;
};

ConvInputs conv_inputs(const Conv2dShape& s, uint64_t seed) {
  return {random_values(x_size(s), seed), random_values(w_size(s), seed + 1),
          random_values(y_size(s), seed + 2)};
}

std::vector<float> conv_forward(const std::vector<float>& x, const std::vector<float>& w,
                                const Conv2dShape& s) {
  Backend& be = cpu_backend();
  std::vector<float> y(y_size(s)), ws(be.conv2d_workspace_floats(s));
  be.conv2d_forward(x.data(), w.data(), nullptr, y.data(), s, ws.data());
  return y;
}

}  // namespace

TEST_CASE("conv2d: im2col by hand on a 3x3 image", "[conv2d]") {
  Backend& be = cpu_backend();
  // x = 1..9 as (1, 3, 3); 2x2 kernel, pad 0, stride 1 -> 2x2 output, col (4, 4):
  //   row (i=0, j=0): x[0,0] x[0,1] x[1,0] x[1,1] = 1 2 4 5
  //   row (0, 1): 2 3 5 6;  row (1, 0): 4 5 7 8;  row (1, 1): 5 6 8 9
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Conv2dShape s = make_shape(1, 1, 3, 3, 1, 2, 2, 0, 0, 1, 1);
  std::vector<float> col(16);
  be.im2col(x.data(), col.data(), s);
  CHECK(col == std::vector<float>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  // col2im of all-ones counts how many windows cover each pixel: corners 1, edges 2, centre 4.
  std::vector<float> ones(16, 1.f), cover(9);
  be.col2im(ones.data(), cover.data(), s);
  CHECK(cover == std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1});
}

TEST_CASE("conv2d: im2col and col2im are adjoint", "[conv2d]") {
  Backend& be = cpu_backend();
  for (const Conv2dShape& s : test_shapes()) {
    const size_t image = size_t(s.c) * s.h * s.w;
    const size_t col_size = size_t(s.col_rows() * s.col_cols());
    const std::vector<float> x = random_values(image, 1);
    const std::vector<float> c = random_values(col_size, 2);
    std::vector<float> col(col_size), back(image);
    be.im2col(x.data(), col.data(), s);
    be.col2im(c.data(), back.data(), s);
    // <im2col(x), c> == <x, col2im(c)>
    const double lhs = weighted_sum(c, col), rhs = weighted_sum(x, back);
    INFO(ich::test::ops::conv_name(s));
    CHECK(lhs == Approx(rhs).epsilon(1e-5));
  }
}

TEST_CASE("conv2d: im2col + gemm forward matches the direct 7-loop convolution", "[conv2d]") {
  Backend& be = cpu_backend();
  for (const Conv2dShape& s : test_shapes()) {
    const std::vector<float> x = random_values(x_size(s), 3);
    const std::vector<float> w = random_values(w_size(s), 4);
    const std::vector<float> bias = random_values(size_t(s.k), 5);
    std::vector<float> y(y_size(s)), ws(be.conv2d_workspace_floats(s));
    be.conv2d_forward(x.data(), w.data(), bias.data(), y.data(), s, ws.data());
    INFO(ich::test::ops::conv_name(s));
    CHECK(max_abs_diff(y, naive_conv2d(x, w, &bias, s)) < 1e-5);
    be.conv2d_forward(x.data(), w.data(), nullptr, y.data(), s, ws.data());
    CHECK(max_abs_diff(y, naive_conv2d(x, w, nullptr, s)) < 1e-5);
  }
}

TEST_CASE("conv2d: backward data and weight pass the gradient check", "[conv2d]") {
  Backend& be = cpu_backend();
  for (const Conv2dShape& s : test_shapes()) {
    const auto [x, w, r] = conv_inputs(s, 6);
    std::vector<float> dx(x_size(s)), dw(w_size(s)), ws(be.conv2d_workspace_floats(s));
    be.conv2d_backward_data(r.data(), w.data(), dx.data(), s, ws.data());
    be.conv2d_backward_weight(x.data(), r.data(), dw.data(), s, ws.data());
    INFO(ich::test::ops::conv_name(s));
    const GradCheckResult rx = check_weighted_gradient(
        r, [&](const std::vector<float>& xv) { return conv_forward(xv, w, s); }, x, dx);
    expect_gradient_ok(rx);
    const GradCheckResult rw = check_weighted_gradient(
        r, [&](const std::vector<float>& wv) { return conv_forward(x, wv, s); }, w, dw);
    expect_gradient_ok(rw);
  }
}

TEST_CASE("conv2d: backward weight sums over the batch, overwriting dw", "[conv2d]") {
  Backend& be = cpu_backend();
  const Conv2dShape s = make_shape(3, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1);
  const std::vector<float> x = random_values(x_size(s), 9);
  const std::vector<float> dy = random_values(y_size(s), 10);
  std::vector<float> dw(w_size(s), 1000.f), ws(be.conv2d_workspace_floats(s));
  be.conv2d_backward_weight(x.data(), dy.data(), dw.data(), s, ws.data());
  // Per-image gradients summed by hand.
  Conv2dShape one = s;
  one.n = 1;
  std::vector<double> expected(w_size(s), 0.0);
  for (int img = 0; img < s.n; ++img) {
    std::vector<float> dw_img(w_size(s));
    be.conv2d_backward_weight(x.data() + img * x_size(one), dy.data() + img * y_size(one),
                              dw_img.data(), one, ws.data());
    for (size_t i = 0; i < dw_img.size(); ++i) expected[i] += dw_img[i];
  }
  CHECK(max_abs_diff(dw, expected) < 1e-5);
}

TEST_CASE("conv2d: bias add and bias grad", "[conv2d]") {
  Backend& be = cpu_backend();
  const int n = 2, c = 3;
  const int64_t hw = 5;
  std::vector<float> y(n * c * hw, 1.f);
  const std::vector<float> bias = {0.5f, -1.f, 2.f};
  be.bias_add(y.data(), bias.data(), n, c, hw);
  for (int img = 0; img < n; ++img)
    for (int ch = 0; ch < c; ++ch)
      for (int i = 0; i < hw; ++i) CHECK(y[(img * c + ch) * hw + i] == 1.f + bias[ch]);

  const std::vector<float> b0 = random_values(c, 11);
  const std::vector<float> base = random_values(n * c * hw, 12);
  const std::vector<float> r = random_values(n * c * hw, 13);
  std::vector<float> db(c);
  be.bias_grad(r.data(), db.data(), n, c, hw);
  const GradCheckResult res = check_weighted_gradient(
      r,
      [&](const std::vector<float>& bias_values) {
        std::vector<float> out = base;
        be.bias_add(out.data(), bias_values.data(), n, c, hw);
        return out;
      },
      b0, db);
  expect_gradient_ok(res);
}

TEST_CASE("conv2d: the gradient checker catches a wrong backward", "[conv2d][gradcheck]") {
  Backend& be = cpu_backend();
  const Conv2dShape s = make_shape(1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1);
  const auto [x, w, r] = conv_inputs(s, 14);
  // A classic bug: backward data with the kernel flipped (rotated 180 degrees) once too often.
  std::vector<float> w_flipped(w.size());
  for (int k = 0; k < s.k; ++k)
    for (int c = 0; c < s.c; ++c)
      for (int i = 0; i < s.kh; ++i)
        for (int j = 0; j < s.kw; ++j)
          w_flipped[((k * s.c + c) * s.kh + i) * s.kw + j] =
              w[((k * s.c + c) * s.kh + (s.kh - 1 - i)) * s.kw + (s.kw - 1 - j)];
  std::vector<float> dx_wrong(x_size(s)), ws(be.conv2d_workspace_floats(s));
  be.conv2d_backward_data(r.data(), w_flipped.data(), dx_wrong.data(), s, ws.data());
  const GradCheckResult res = check_weighted_gradient(
      r, [&](const std::vector<float>& xv) { return conv_forward(xv, w, s); }, x, dx_wrong);
  CHECK_FALSE(res.ok());
  CHECK(res.failed > res.checked / 2);
}

TEST_CASE("conv2d: bad shapes and null pointers throw", "[conv2d]") {
  Backend& be = cpu_backend();
  std::vector<float> buf(4096);
  Conv2dShape s = make_shape(1, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1);
  Conv2dShape bad = s;
  bad.c = -1;
  CHECK_THROWS_AS(be.conv2d_workspace_floats(bad), Error);
  bad = s;
  bad.stride_h = 0;
  CHECK_THROWS_AS(be.im2col(buf.data(), buf.data(), bad), Error);
  bad = s;
  bad.pad_h = 0, bad.h = 2;  // 3x3 kernel over a 2-row image without padding
  CHECK_THROWS_AS(be.conv2d_forward(buf.data(), buf.data(), nullptr, buf.data(), bad, buf.data()),
                  Error);
  CHECK_THROWS_AS(be.conv2d_forward(buf.data(), nullptr, nullptr, buf.data(), s, buf.data()),
                  Error);
  CHECK_THROWS_AS(be.conv2d_backward_weight(buf.data(), buf.data(), buf.data(), s, nullptr), Error);
}

namespace {

// Direct backward sums in double: dx (n, c, h, w) and dw (k, c, kh, kw) for upstream dy.
void naive_conv2d_backward(const std::vector<float>& x, const std::vector<float>& w,
                           const std::vector<float>& dy, const Conv2dShape& s,
                           std::vector<double>& dx, std::vector<double>& dw) {
  dx.assign(x_size(s), 0.0);
  dw.assign(w_size(s), 0.0);
  for_each_tap(s, [&](size_t yi, size_t xi, size_t wi) {
    const double g = dy[yi];
    dx[xi] += g * w[wi];
    dw[wi] += g * x[xi];
  });
}

}  // namespace

// Shapes large enough that the CPU backend cuts the output columns into several blocks and
// the weight gradient into several partial sums: batch 1 (partials per block group), stride
// 2 (backward data through col2im), and a pointwise convolution (no im2col at all).
TEST_CASE("conv2d: blocked paths match direct sums and give the same bits for 1 and 2 threads",
          "[conv2d][determinism]") {
  const std::vector<Conv2dShape> shapes = {make_shape(1, 32, 40, 40, 8, 3, 3, 1, 1, 1, 1),
                                           make_shape(2, 64, 61, 61, 3, 3, 3, 1, 1, 2, 2),
                                           make_shape(2, 300, 30, 30, 4, 1, 1, 0, 0, 1, 1)};
  for (const Conv2dShape& s : shapes) {
    INFO(ich::test::ops::conv_name(s));
    const ConvData d = conv_data(s, 21);
    const ConvResults one = run_passes(d, s, 1, true), two = run_passes(d, s, 2, true);
    std::vector<double> dx_ref, dw_ref;
    naive_conv2d_backward(d.x, d.w, d.dy, s, dx_ref, dw_ref);
    // Sums of up to 600 products of values in [-1, 1]: float error well below 1e-3.
    CHECK(max_abs_diff(two.y, naive_conv2d(d.x, d.w, &d.bias, s)) < 1e-3);
    CHECK(max_abs_diff(two.dx, dx_ref) < 1e-3);
    CHECK(max_abs_diff(two.dw, dw_ref) < 1e-3);
    CHECK(same_bits(one.y, two.y));
    CHECK(same_bits(one.dx, two.dx));
    CHECK(same_bits(one.dw, two.dw));
  }
}

// ---- Winograd F(4x4, 3x3) (kernels/cpu/conv2d_winograd.cpp) against the direct sums.

namespace {

// Forces the CPU backend's algorithm for one scope, whatever ICH_CONV_ALGO says.
class ForceConvAlgo {
 public:
  explicit ForceConvAlgo(cpu::ConvAlgo algo) { cpu::set_conv_algo(algo); }
  ~ForceConvAlgo() { cpu::clear_conv_algo_override(); }
  ForceConvAlgo(const ForceConvAlgo&) = delete;
  ForceConvAlgo& operator=(const ForceConvAlgo&) = delete;
};

// check(s) on each shape, Winograd forced when the first begins (the determinism tests).
template <typename Check>
void under_winograd(const std::vector<Conv2dShape>& shapes, Check check) {
  ForceConvAlgo force(cpu::ConvAlgo::winograd);
  for (const Conv2dShape& s : shapes) {
    INFO(ich::test::ops::conv_name(s));
    check(s);
  }
}

std::vector<float> abs_values(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

// max over outputs of |got - want| / scale, scale = sum of |terms| of that output (+ 1e-30).
double worst_relative(const std::vector<float>& got, const std::vector<double>& want,
                      const std::vector<double>& scale) {
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double r = std::fabs(double(got[i]) - want[i]) / (scale[i] + 1e-30);
    if (!(r <= worst)) worst = r;  // NaN sticks
  }
  return worst;
}

// Winograd's transforms scale the products by up to 8 * 8 (A) and 5 * 5 ... (B) before they
// cancel, so its rounding error is larger than a direct float sum's (~ c * 9 * 6e-8 of
// sum |w||x| at worst). Measured worst over the shapes below (g++ 12, AVX-512): im2col
// 1.7e-7, Winograd 2.3e-6 of sum |w||x| per output. The bound, 1e-5 (about 80 float ulps of
// the scale), leaves 4x for other compilers and BLAS kernels; a wrong transform entry, a lost
// tile or a misplaced edge miss it by orders of magnitude (errors of O(1)).
constexpr double kWinogradTol = 1e-5;

// Winograd's result against im2col's: NMSE = sum (a - b)^2 / sum b^2, and the worst
// |a - b| / scale, scale = the im2col result on |inputs| (sum of |terms| of that output).
struct Agreement {
  double nmse = 0.0, worst = 0.0;
};

Agreement agreement(const std::vector<float>& wino, const std::vector<float>& ref,
                    const std::vector<float>& scale) {
  double num = 0.0, den = 0.0, worst = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(wino[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
    worst = std::max(worst, std::fabs(d) / double(scale[i]));
  }
  return {num / den, worst};
}

// The U-Net's 3x3 layers {c, side, k} at batch n: Winograd's forward (weight_gradient false;
// inputs x and w from seed, seed + 1) or weight gradient (x and dy) against im2col's, values in
// [-1, 1]: NMSE in units of 1e-12 at most max_nmse_e12 (so that Catch prints the digits), the
// worst |a - b| / (im2col's result on |inputs|) at most 1e-5.
struct Layer {
  int c, side, k;
};

std::vector<float> conv_backward_weight(const std::vector<float>& x, const std::vector<float>& dy,
                                        const Conv2dShape& s);

void check_winograd_on_layers(bool weight_gradient, int n, std::initializer_list<Layer> layers,
                              uint64_t seed, double max_nmse_e12) {
  for (const Layer& l : layers) {
    const Conv2dShape s = make_shape(n, l.c, l.side, l.side, l.k, 3, 3, 1, 1, 1, 1);
    const std::vector<float> x = random_values(x_size(s), seed);
    const std::vector<float> other =
        random_values(weight_gradient ? y_size(s) : w_size(s), seed + 1);
    auto with = [&](cpu::ConvAlgo algo, const std::vector<float>& xs,
                    const std::vector<float>& others) {
      ForceConvAlgo force(algo);
      return weight_gradient ? conv_backward_weight(xs, others, s) : conv_forward(xs, others, s);
    };
    const std::vector<float> wino = with(cpu::ConvAlgo::winograd, x, other);
    const std::vector<float> ref = with(cpu::ConvAlgo::im2col, x, other);
    const std::vector<float> scale = with(cpu::ConvAlgo::im2col, abs_values(x), abs_values(other));
    const Agreement a = agreement(wino, ref, scale);
    INFO("c=" << l.c << " " << l.side << "x" << l.side << " k=" << l.k);
    CHECK(a.nmse * 1e12 <= max_nmse_e12);
    CHECK(a.worst * 1e6 <= 10.0);
  }
}

}  // namespace

TEST_CASE("conv2d: ICH_CONV_ALGO values parse, a bad one throws", "[conv2d][winograd]") {
  CHECK(cpu::parse_conv_algo("auto") == cpu::ConvAlgo::automatic);
  CHECK(cpu::parse_conv_algo("im2col") == cpu::ConvAlgo::im2col);
  CHECK(cpu::parse_conv_algo("winograd") == cpu::ConvAlgo::winograd);
  CHECK_THROWS_AS(cpu::parse_conv_algo("Winograd"), Error);
  CHECK_THROWS_WITH(cpu::parse_conv_algo("fft"), Catch::Contains("ICH_CONV_ALGO is 'fft'") &&
                                                     Catch::Contains("auto, im2col or winograd"));
  Conv2dShape s = make_shape(1, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1);
  CHECK(cpu::winograd_eligible(s));
  {
    ForceConvAlgo force(cpu::ConvAlgo::im2col);
    CHECK_FALSE(cpu::use_winograd(s));
  }
  {
    ForceConvAlgo force(cpu::ConvAlgo::automatic);
    CHECK(cpu::use_winograd(s));
    s.c = cpu::kWinogradMinChannels - 1;
    CHECK_FALSE(cpu::use_winograd(s));
  }
  {
    ForceConvAlgo force(cpu::ConvAlgo::automatic);
    s.c = 64;
    CHECK(cpu::use_winograd_weight(s));
    s.k = cpu::kWinogradWeightMinChannels - 1;
    CHECK_FALSE(cpu::use_winograd_weight(s));
    s.k = 64;
  }
  ForceConvAlgo force(cpu::ConvAlgo::winograd);
  CHECK(cpu::use_winograd(s));
  CHECK(cpu::use_winograd_weight(s));
  s.stride_h = 2;
  CHECK_FALSE(cpu::use_winograd(s));  // not eligible: im2col whatever the setting
  CHECK_FALSE(cpu::use_winograd_weight(s));
  s = make_shape(1, 64, 8, 8, 64, 3, 3, 0, 0, 1, 1);
  CHECK_FALSE(cpu::use_winograd(s));
  s = make_shape(1, 64, 8, 8, 64, 1, 1, 0, 0, 1, 1);
  CHECK_FALSE(cpu::use_winograd(s));
}

namespace {

// 3x3 / stride 1 / pad 1 shapes for the Winograd accuracy tests: every side of 1..13 (4k + 1
// and others: partial tiles), each with a w that differs from it, 1..70 channels, batch 1
// and 3; the largest channel counts skip half their big sides to keep the direct sums
// affordable. `index` seeds the case's inputs (and, forward, whether it has a bias).
struct AwkwardShape {
  Conv2dShape shape;
  int index = 0;
};

std::vector<AwkwardShape> awkward_3x3_shapes() {
  const int sides[] = {1, 2, 3, 4, 5, 7, 9, 13};
  struct Channels {
    int n, c, k;
  };
  const Channels channels[] = {{1, 1, 1},  {3, 2, 5},   {1, 17, 3}, {3, 16, 16},
                               {1, 5, 33}, {3, 70, 41}, {1, 64, 70}};
  std::vector<AwkwardShape> shapes;
  int index = 0;
  for (const Channels& ch : channels) {
    for (int hi = 0; hi < 8; ++hi) {
      const int h = sides[hi], w = sides[(hi * 3 + index) % 8];
      ++index;
      if (ch.c * ch.k > 1000 && (h > 9 || w > 9) && hi % 2 == 0) continue;
      shapes.push_back({make_shape(ch.n, ch.c, h, w, ch.k, 3, 3, 1, 1, 1, 1), index});
    }
  }
  return shapes;
}

// Runs check(shape, index) on every awkward shape with im2col, then with Winograd, and returns
// the worst error each reported: {im2col, winograd}.
using Worst = std::array<double, 2>;

template <typename Check>
Worst worst_over_algorithms(Check check) {
  Worst worst = {0.0, 0.0};
  for (int algo = 0; algo < 2; ++algo) {
    ForceConvAlgo force(algo == 0 ? cpu::ConvAlgo::im2col : cpu::ConvAlgo::winograd);
    for (const AwkwardShape& awkward : awkward_3x3_shapes()) {
      INFO((algo == 0 ? "im2col " : "winograd ") << ich::test::ops::conv_name(awkward.shape));
      worst[algo] = std::max(worst[algo], check(awkward.shape, awkward.index));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE(
    "conv2d: Winograd and im2col forward and backward data match the direct sums on "
    "awkward shapes",
    "[conv2d][winograd]") {
  Backend& be = cpu_backend();
  const Worst worst = worst_over_algorithms([&](const Conv2dShape& s, int index) {
    const bool with_bias = index % 2 == 0;
    INFO((with_bias ? "bias" : "no bias"));
    const std::vector<float> x = random_values(x_size(s), 31 + index);
    const std::vector<float> wt = random_values(w_size(s), 32 + index);
    const std::vector<float> bias = random_values(size_t(s.k), 33 + index);
    const std::vector<float> dy = random_values(y_size(s), 34 + index);
    std::vector<float> y(y_size(s)), dx(x_size(s)), ws(be.conv2d_workspace_floats(s));
    be.conv2d_forward(x.data(), wt.data(), with_bias ? bias.data() : nullptr, y.data(), s,
                      ws.data());
    be.conv2d_backward_data(dy.data(), wt.data(), dx.data(), s, ws.data());
    const std::vector<float> abs_bias = abs_values(bias);
    const std::vector<double> y_ref = naive_conv2d(x, wt, with_bias ? &bias : nullptr, s);
    const std::vector<double> y_scale =
        naive_conv2d(abs_values(x), abs_values(wt), with_bias ? &abs_bias : nullptr, s);
    std::vector<double> dx_ref, dw_ref, dx_scale, dw_scale;
    naive_conv2d_backward(x, wt, dy, s, dx_ref, dw_ref);
    naive_conv2d_backward(abs_values(x), abs_values(wt), abs_values(dy), s, dx_scale, dw_scale);
    const double ey = worst_relative(y, y_ref, y_scale);
    const double ex = worst_relative(dx, dx_ref, dx_scale);
    CHECK(ey <= kWinogradTol);
    CHECK(ex <= kWinogradTol);
    return std::max(ey, ex);
  });
  INFO("worst |error| / sum|terms|: im2col " << worst[0] << ", winograd " << worst[1]);
  CHECK(worst[1] > 0.0);  // Winograd did run: its rounding differs from the direct sum's
}

// Several tile blocks, some spanning two images: 40 + 120 channels give 4 blocks of 68 tiles
// over 3 images of 90 (37x35: partial tiles at the right and bottom edges); 64 + 64 channels
// 6 blocks of 108 over 2 images of 324 tiles.
TEST_CASE("conv2d: Winograd gives the same bits for 1 and 2 threads",
          "[conv2d][winograd]"
          "[determinism]") {
  under_winograd({make_shape(3, 40, 37, 35, 120, 3, 3, 1, 1, 1, 1),
                  make_shape(2, 64, 70, 70, 64, 3, 3, 1, 1, 1, 1)},
                 [](const Conv2dShape& s) {
                   const ConvData d = conv_data(s, 41);
                   const ConvResults one = run_passes(d, s, 1, false);
                   const ConvResults two = run_passes(d, s, 2, false);
                   CHECK(same_bits(one.y, two.y));
                   CHECK(same_bits(one.dx, two.dx));
                   // And it is a convolution: against the direct sum (values in [-1, 1], 576
                   // terms).
                   CHECK(max_abs_diff(two.y, naive_conv2d(d.x, d.w, &d.bias, s)) < 1e-3);
                 });
}

// The U-Net's 3x3 layers (batch 1; width 64 at 160x160 input): Winograd against im2col + GEMM,
// both in float, on values in [-1, 1] as after BatchNorm. NMSE = sum (a - b)^2 / sum b^2 and the
// worst |a - b| / sum |w||x| per output. Measured (g++ 12, OpenBLAS SkylakeX): NMSE 3.0e-12 to
// 5.7e-12, worst 0.8e-6 to 2.2e-6 (docs/PERFORMANCE.md, "Winograd"); the bounds, 2e-11 and
// 1e-5, leave 3.5x. (A float32 sum of ~600 terms alone is at NMSE ~1e-14.)
TEST_CASE("conv2d: Winograd against im2col on the U-Net's layer shapes", "[conv2d][winograd]") {
  check_winograd_on_layers(false, 1,
                           {{64, 160, 64},
                            {64, 80, 128},
                            {128, 80, 128},
                            {128, 40, 256},
                            {256, 40, 256},
                            {256, 20, 256},
                            {512, 40, 256},
                            {384, 80, 128},
                            {192, 160, 64}},
                           51, 20.0);
}

// ---- Winograd weight gradient: dw = G^T [sum over tiles (A dY A^T) (.) (B^T d B)] G.

namespace {

// The weight gradient on the current setting (overwriting a dw full of 7s).
std::vector<float> conv_backward_weight(const std::vector<float>& x, const std::vector<float>& dy,
                                        const Conv2dShape& s) {
  Backend& be = cpu_backend();
  std::vector<float> dw(w_size(s), 7.0f), ws(be.conv2d_workspace_floats(s));
  be.conv2d_backward_weight(x.data(), dy.data(), dw.data(), s, ws.data());
  return dw;
}

// A's entries reach 8 (Z = A dY A^T scales by up to 8 * 8 before G's 1/24 cancels it), so the
// weight gradient's rounding is larger than the forward's. Measured worst over the shapes below
// (g++ 12, AVX-512): im2col 1.7e-7, Winograd 3.0e-6 of sum |dy||x| per weight (scale: see the
// test), about the forward's 2.3e-6, so F(4x4) is kept (F(2x2) was not needed). The bound, 1e-5
// as for the forward, leaves 3x for other compilers and BLAS kernels; a wrong transform entry or
// a lost edge tile gives errors of O(1).
constexpr double kWinogradWeightTol = 1e-5;

}  // namespace

TEST_CASE("conv2d: Winograd and im2col weight gradients match the direct sums on awkward shapes",
          "[conv2d][winograd]") {
  const Worst worst = worst_over_algorithms([](const Conv2dShape& s, int index) {
    const std::vector<float> x = random_values(x_size(s), 61 + index);
    const std::vector<float> wt = random_values(w_size(s), 62 + index);
    const std::vector<float> dy = random_values(y_size(s), 63 + index);
    const std::vector<float> dw = conv_backward_weight(x, dy, s);
    std::vector<double> dx_ref, dw_ref, dx_scale, dw_scale;
    naive_conv2d_backward(x, wt, dy, s, dx_ref, dw_ref);
    naive_conv2d_backward(abs_values(x), abs_values(wt), abs_values(dy), s, dx_scale, dw_scale);
    // A weight that never meets the image (the outer column of a 1-pixel-wide image) has
    // sum |dy||x| = 0, but Winograd mixes it with its 3x3 neighbours' terms before they
    // cancel: so the scale is the largest sum |dy||x| of the weight's 3x3 kernel.
    for (size_t kc = 0; kc < dw_scale.size(); kc += 9) {
      const double m = *std::max_element(dw_scale.begin() + kc, dw_scale.begin() + kc + 9);
      std::fill(dw_scale.begin() + kc, dw_scale.begin() + kc + 9, m);
    }
    const double e = worst_relative(dw, dw_ref, dw_scale);
    CHECK(e <= kWinogradWeightTol);
    return e;
  });
  INFO("worst |error| / sum|dy||x|: im2col " << worst[0] << ", winograd " << worst[1]);
  CHECK(worst[1] > 0.0);  // Winograd did run
}

// Several groups and blocks of tiles (16 + 16 channels: 12 blocks of 400 tiles over 3 images of
// 1600, in 8 groups of 1 or 2 blocks; 41 + 117 channels: 4 blocks of 68 tiles over 3 images of 90,
// one per group), blocks spanning images, partial edge tiles, odd channel counts.
TEST_CASE("conv2d: the Winograd weight gradient gives the same bits for 1 and 2 threads",
          "[conv2d][winograd][determinism]") {
  under_winograd({make_shape(3, 16, 158, 159, 16, 3, 3, 1, 1, 1, 1),
                  make_shape(3, 41, 37, 35, 117, 3, 3, 1, 1, 1, 1)},
                 [](const Conv2dShape& s) {
                   const std::vector<float> x = random_values(x_size(s), 71);
                   const std::vector<float> dy = random_values(y_size(s), 72);
                   auto run = [&](int threads) {
                     const OmpThreads limit(threads);
                     return conv_backward_weight(x, dy, s);
                   };
                   const std::vector<float> one = run(1), two = run(2), three = run(3);
                   CHECK(same_bits(one, two));
                   CHECK(same_bits(one, three));
                   ForceConvAlgo im2col(cpu::ConvAlgo::im2col);
                   const std::vector<float> ref = conv_backward_weight(x, dy, s);
                   // ~75000 terms
                   CHECK(max_abs_diff(two, std::vector<double>(ref.begin(), ref.end())) < 1e-2);
                 });
}

// The U-Net's 3x3 layers, batch 4 (width 64 at 160x160 and width 16's first layers): Winograd's
// weight gradient against im2col's, values in [-1, 1]. NMSE and the worst |a - b| / sum|dy||x|.
// Measured (g++ 12, OpenBLAS SkylakeX): NMSE 2.8e-12 to 8.5e-12, worst 1.0e-7 to 8.3e-7
// (docs/PERFORMANCE.md, "Weight gradient"); the bounds, 3e-11 and 1e-5, leave 3.5x and 12x.
TEST_CASE("conv2d: Winograd weight gradient against im2col on the U-Net's layer shapes",
          "[conv2d][winograd]") {
  check_winograd_on_layers(
      true, 4,
      {{16, 160, 16}, {32, 80, 32}, {64, 160, 64}, {128, 80, 128}, {256, 40, 256}, {256, 20, 256}},
      81, 30.0);
}
