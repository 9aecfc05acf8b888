// The op table's entries for cuda-core's primitives (fill and random, windowing, gemm,
// elementwise and reductions, activations, dropout2d, concat/split, losses, Adam); the
// format is op_case.h's. Parity shapes include 1, odd sizes and sizes that are not
// multiples of the block (256) or of the GEMM tile (64).
//
// Ceilings: 0 where both sides compute the same float operations in the same order
// (window, relu, dropout masks, concat); 1e-13 where nvcc may fuse a multiply-add the
// CPU rounds twice; 1e-10 where summation order or libm's expf/logf differ.
#include <cmath>
#include <sstream>

#include "ops/op_case.h"

namespace ich::test::ops {
namespace {

using Device = OpBench::Device;

constexpr int64_t kSizes[] = {1, 7, 255, 256, 257, 1000, 4097, 70001};

std::string with_n(const char* op, int64_t n) {
  return std::string(op) + " n=" + std::to_string(n);
}

// ---- fill and random

OpCase fill_case(int64_t n, float value) {
  return {with_n("fill", n), 0.0,
          [=](OpRun& r) -> Call {
            float* y = r.out(n);
            Backend* b = &r.backend;
            return [=] { b->fill(y, n, value); };
          },
          n};
}

// Uniform in [a, b) or normal with mean a and standard deviation b, by the Philox contract at
// (seed, offset); the offset advances by n after each call, so a benchmark draws new numbers
// every time.
enum class Distribution { uniform, normal };

OpCase random_case(Distribution d, int64_t n, uint64_t seed, uint64_t offset, float a, float b) {
  const bool uniform = d == Distribution::uniform;
  return {with_n(uniform ? "uniform" : "normal", n), uniform ? 1e-13 : 1e-10,
          [=](OpRun& r) -> Call {
            float* y = r.out(n);
            Backend* be = &r.backend;
            return [=, at = offset]() mutable {
              if (uniform) {
                be->uniform(y, n, seed, at, a, b);
              } else {
                be->normal(y, n, seed, at, a, b);
              }
              at += uint64_t(n);
            };
          },
          n};
}

std::vector<OpEntry> fill_random_entries() {
  OpEntry fill{"fill", "fill_random"}, uniform{"uniform", "fill_random"},
      normal{"normal", "fill_random"};
  for (int64_t n : kSizes) {
    fill.parity.push_back(fill_case(n, -2.5f));
    uniform.parity.push_back(random_case(Distribution::uniform, n, 1234, 77, -3.0f, 5.0f));
    normal.parity.push_back(random_case(Distribution::normal, n, 99, 1u << 20, 0.5f, 2.0f));
  }
  uniform.race.push_back(random_case(Distribution::uniform, 700, 5, 9, 0.0f, 1.0f));
  fill.bench.push_back(bench_of("BM_cuda_fill", Device::cuda, fill_case(kActivation, 0.5f)));
  uniform.bench.push_back(
      bench_of("BM_cpu_uniform_4x64x160x160", Device::cpu,
               random_case(Distribution::uniform, kActivation, 42, 0, -1.0f, 1.0f)));
  uniform.bench.push_back(
      bench_of("BM_cuda_uniform", Device::cuda,
               random_case(Distribution::uniform, kActivation, 7, 0, -1.0f, 1.0f)));
  normal.bench.push_back(
      bench_of("BM_cuda_normal", Device::cuda,
               random_case(Distribution::normal, kActivation, 7, 0, 0.0f, 1.0f)));
  return {fill, uniform, normal};
}

// ---- CT windowing

OpCase ct_window_case(int64_t n, uint64_t seed, float lo, float hi, float wl, float ww) {
  return {with_n("ct_window", n), 0.0,
          [=](OpRun& r) -> Call {
            const float* hu = r.in(values(size_t(n), seed, lo, hi));
            float* y = r.out(n);
            Backend* b = &r.backend;
            return [=] { b->ct_window(hu, y, n, wl, ww); };
          },
          2 * n};
}

// HU as a scanner stores them: int16, from values in [-1024, 3071]. Traffic: 2 bytes read
// and 4 written per element, counted as 1.5 floats.
OpCase ct_window_i16_case(int64_t n, uint64_t seed, float wl, float ww) {
  return {with_n("ct_window_i16", n), 0.0,
          [=](OpRun& r) -> Call {
            const std::vector<float> v = values(size_t(n), seed, -1024.0f, 3071.0f);
            std::vector<int16_t> hu(v.size());
            for (int64_t i = 0; i < n; ++i) hu[i] = int16_t(std::lround(v[i]));
            const int16_t* x = r.in(hu);
            float* y = r.out(n);
            Backend* b = &r.backend;
            return [=] { b->ct_window_i16(x, y, n, wl, ww); };
          },
          n + n / 2};
}

OpEntry ct_window_entry() {
  OpEntry e{"ct_window", "window"};
  for (int64_t n : kSizes) {
    e.parity.push_back(ct_window_case(n, 1, -1100.0f, 1500.0f, 40.0f, 120.0f));
    e.parity.push_back(ct_window_i16_case(n, 2, 40.0f, 80.0f));
  }
  e.race.push_back(ct_window_case(700, 1, -500.0f, 500.0f, 40.0f, 120.0f));
  // A 512x512x40 CT volume.
  const int64_t volume = int64_t(512) * 512 * 40;
  e.bench.push_back(bench_of("BM_cuda_ct_window", Device::cuda,
                             ct_window_case(volume, 1, -1024.0f, 3071.0f, 40.0f, 120.0f)));
  e.bench.push_back(bench_of("BM_cuda_ct_window_i16", Device::cuda,
                             ct_window_i16_case(volume, 1, 40.0f, 120.0f)));
  return e;
}

// ---- GEMM

// C (m, n) = alpha op(A) op(B) + beta C, each stored matrix with `pad` columns of padding in
// its row stride. A, B and C come from seed, seed + 1, seed + 2.
OpCase gemm_case(int m, int n, int k, bool ta, bool tb, float alpha, float beta, int pad,
                 uint64_t seed) {
  std::ostringstream name;
  name << "gemm m=" << m << " n=" << n << " k=" << k << (ta ? " A^T" : "") << (tb ? " B^T" : "")
       << " alpha=" << alpha << " beta=" << beta;
  return {name.str(), 1e-10,
          [=](OpRun& r) -> Call {
            const int a_rows = ta ? k : m, a_cols = ta ? m : k;
            const int b_rows = tb ? n : k, b_cols = tb ? k : n;
            const int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
            const float* a = r.in(values(size_t(a_rows) * lda, seed));
            const float* b = r.in(values(size_t(b_rows) * ldb, seed + 1));
            // beta == 0: C must not be read, so it starts as NaN.
            float* c =
                beta == 0.0f ? r.out(size_t(m) * ldc) : r.inout(values(size_t(m) * ldc, seed + 2));
            Backend* be = &r.backend;
            return [=] {
              be->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
              // The padding columns of C are never written: make them equal on every side.
              if (beta == 0.0f && pad > 0)
                for (int row = 0; row < m; ++row) be->fill(c + size_t(row) * ldc + n, pad, 0.0f);
            };
          },
          int64_t(m) * k + int64_t(k) * n + int64_t(m) * n, 2.0 * m* n* k};
}

OpEntry gemm_entry() {
  OpEntry e{"gemm", "gemm"};
  struct Size {
    int m, n, k;
  };
  for (const Size& s : {Size{1, 1, 1}, Size{5, 7, 3}, Size{64, 64, 16}, Size{65, 33, 17},
                        Size{100, 70, 130}, Size{3, 130, 1}})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int scaled = 0; scaled < 2; ++scaled)
          e.parity.push_back(
              gemm_case(s.m, s.n, s.k, ta, tb, scaled ? 0.5f : 1.0f, scaled ? -2.0f : 0.0f, 3, 10));
  e.race.push_back(gemm_case(70, 66, 40, true, true, 1.0f, 0.5f, 0, 8));  // gemm's shared tiles
  e.bench.push_back(bench_of("BM_cpu_gemm_1024", Device::cpu,
                             gemm_case(1024, 1024, 1024, false, false, 1.0f, 0.0f, 0, 1)));
  // Ours against cuBLAS.
  for (GemmImpl impl : {GemmImpl::ours, GemmImpl::cublas}) {
    OpBench b;
    b.name = impl == GemmImpl::ours ? "BM_cuda_gemm_ours" : "BM_cuda_gemm_cublas";
    b.device = Device::cuda;
    b.gemm = impl;
    b.args = {{256}, {1024}, {4096}};
    b.make = [](const std::vector<int64_t>& args) {
      const int n = int(args[0]);
      return gemm_case(n, n, n, false, false, 1.0f, 0.0f, 0, 1);
    };
    e.bench.push_back(b);
  }
  return e;
}

// ---- elementwise primitives of one or two inputs (FLOPs: one per element where given)

using Unary = void (Backend::*)(const float* x, float* y, int64_t n);
using Binary = void (Backend::*)(const float* a, const float* b, float* y, int64_t n);

struct Range {
  float lo = -1.0f, hi = 1.0f;
};

// y = f(x): x from seed.
OpCase unary_case(const char* op, Unary f, int64_t n, uint64_t seed, Range x_range,
                  double max_nmse) {
  return {with_n(op, n), max_nmse,
          [=](OpRun& r) -> Call {
            const float* x = r.in(values(size_t(n), seed, x_range.lo, x_range.hi));
            float* y = r.out(n);
            Backend* be = &r.backend;
            return [=] { (be->*f)(x, y, n); };
          },
          2 * n};
}

// y = f(a, b): a from seed, b from seed + 1.
OpCase binary_case(const char* op, Binary f, int64_t n, uint64_t seed, Range b_range,
                   double max_nmse, double flops_per_element = 0.0) {
  return {with_n(op, n), max_nmse,
          [=](OpRun& r) -> Call {
            const float* a = r.in(values(size_t(n), seed));
            const float* b = r.in(values(size_t(n), seed + 1, b_range.lo, b_range.hi));
            float* y = r.out(n);
            Backend* be = &r.backend;
            return [=] { (be->*f)(a, b, y, n); };
          },
          3 * n, flops_per_element* double(n)};
}

OpCase add_case(int64_t n, uint64_t seed) {
  return binary_case("add", &Backend::add, n, seed, {}, 0.0, 1.0);
}

OpCase mul_case(int64_t n, uint64_t seed) {
  return binary_case("mul", &Backend::mul, n, seed, {}, 0.0, 1.0);
}

OpCase scale_case(int64_t n, float alpha, uint64_t seed) {
  return {with_n("scale", n), 0.0,
          [=](OpRun& r) -> Call {
            const float* x = r.in(values(size_t(n), seed));
            float* y = r.out(n);
            Backend* be = &r.backend;
            return [=] { be->scale(x, y, n, alpha); };
          },
          2 * n, double(n)};
}

// y (seed + 1) += alpha x (seed).
OpCase axpy_case(int64_t n, float alpha, uint64_t seed) {
  return {with_n("axpy", n), 1e-13,
          [=](OpRun& r) -> Call {
            const float* x = r.in(values(size_t(n), seed));
            float* y = r.inout(values(size_t(n), seed + 1));
            Backend* be = &r.backend;
            return [=] { be->axpy(alpha, x, y, n); };
          },
          3 * n, 2.0 * double(n)};
}

OpCase sum_case(int64_t n, uint64_t seed, float lo, float hi) {
  return {with_n("sum", n), 1e-10,
          [=](OpRun& r) -> Call {
            const float* x = r.in(values(size_t(n), seed, lo, hi));
            float* y = r.out(1);
            Backend* be = &r.backend;
            return [=] { be->sum(x, n, y); };
          },
          n, double(n)};
}

std::vector<OpEntry> elementwise_entries() {
  OpEntry add_entry{"add", "elementwise"}, mul_entry{"mul", "elementwise"},
      scale_entry{"scale", "elementwise"}, axpy_entry{"axpy", "elementwise"},
      sum_entry{"sum", "elementwise"};
  for (int64_t n : kSizes) {
    add_entry.parity.push_back(add_case(n, 1));
    mul_entry.parity.push_back(mul_case(n, 3));
    scale_entry.parity.push_back(scale_case(n, -1.75f, 5));
    axpy_entry.parity.push_back(axpy_case(n, 0.3f, 6));
    sum_entry.parity.push_back(sum_case(n, 8, 0.0f, 1.0f));
  }
  // Reductions and accumulations over 6 blocks of 256 threads (2 in the small-grid target).
  sum_entry.race.push_back(sum_case(1500, 1, -1.0f, 1.0f));
  axpy_entry.race.push_back(axpy_case(1500, 0.5f, 6));

  const Shape s{2, 3, 2, 2};
  add_entry.grad.push_back({"add",
                            [](const std::vector<Tensor>& t) { return add(t[0], t[1]); },
                            {input(s, 19), input(s, 20)}});
  mul_entry.grad.push_back({"mul",
                            [](const std::vector<Tensor>& t) { return mul(t[0], t[1]); },
                            {input(s, 21), input(s, 22)}});
  scale_entry.grad.push_back(
      {"scale", [](const std::vector<Tensor>& t) { return scale(t[0], -1.5f); }, {input(s, 23)}});
  sum_entry.grad.push_back(
      {"sum", [](const std::vector<Tensor>& t) { return sum(t[0]); }, {input(s, 24)}});
  // One input of 50 values against a fixed second operand: d<r, a + b>/da = r,
  // d<r, a * b>/da = r * b, d<r, alpha a>/da = alpha r; d(g sum(a))/da = g everywhere.
  const Shape v{50};
  const OpInput a = input(v, 91), b = constant(v, values(50, 92));
  add_entry.grad.push_back({"add against a fixed operand",
                            [](const std::vector<Tensor>& t) { return add(t[0], t[1]); },
                            {a, b},
                            93});
  mul_entry.grad.push_back({"mul against a fixed operand",
                            [](const std::vector<Tensor>& t) { return mul(t[0], t[1]); },
                            {a, b},
                            93});
  scale_entry.grad.push_back({"scale by -1.75",
                              [](const std::vector<Tensor>& t) { return scale(t[0], -1.75f); },
                              {a},
                              93});
  OpGrad sum_of_50{
      "sum, upstream 0.3", [](const std::vector<Tensor>& t) { return sum(t[0]); }, {a}};
  sum_of_50.upstream = {0.3f};
  sum_entry.grad.push_back(sum_of_50);

  add_entry.bench.push_back(
      bench_of("BM_cpu_add_4x64x160x160", Device::cpu, add_case(kActivation, 25)));
  axpy_entry.bench.push_back(
      bench_of("BM_cpu_axpy_4x64x160x160", Device::cpu, axpy_case(kActivation, 1e-3f, 27)));
  sum_entry.bench.push_back(
      bench_of("BM_cpu_sum_4x64x160x160", Device::cpu, sum_case(kActivation, 28, -1.0f, 1.0f)));
  add_entry.bench.push_back(bench_of("BM_cuda_add", Device::cuda, add_case(kActivation, 1)));
  mul_entry.bench.push_back(bench_of("BM_cuda_mul", Device::cuda, mul_case(kActivation, 1)));
  scale_entry.bench.push_back(
      bench_of("BM_cuda_scale", Device::cuda, scale_case(kActivation, 0.5f, 1)));
  axpy_entry.bench.push_back(
      bench_of("BM_cuda_axpy", Device::cuda, axpy_case(kActivation, 1e-3f, 1)));
  sum_entry.bench.push_back(
      bench_of("BM_cuda_sum", Device::cuda, sum_case(kActivation, 1, -1.0f, 1.0f)));
  return {add_entry, mul_entry, scale_entry, axpy_entry, sum_entry};
}

// ---- activations: forward from x (seed), backward from dy (seed) and x or y (seed + 1)

OpCase relu_forward_case(int64_t n, uint64_t seed) {
  return unary_case("relu_forward", &Backend::relu_forward, n, seed, {}, 0.0);
}

OpCase relu_backward_case(int64_t n, uint64_t seed) {
  return binary_case("relu_backward", &Backend::relu_backward, n, seed, {}, 0.0);
}

OpCase sigmoid_forward_case(int64_t n, uint64_t seed) {
  return unary_case("sigmoid_forward", &Backend::sigmoid_forward, n, seed, {-12.0f, 12.0f}, 1e-10);
}

OpCase sigmoid_backward_case(int64_t n, uint64_t seed) {
  return binary_case("sigmoid_backward", &Backend::sigmoid_backward, n, seed, {0.0f, 1.0f}, 1e-13);
}

std::vector<OpEntry> activation_entries() {
  OpEntry relu_entry{"relu", "activation"}, sigmoid_entry{"sigmoid", "activation"};
  for (int64_t n : kSizes) {
    relu_entry.parity.push_back(relu_forward_case(n, 1));
    relu_entry.parity.push_back(relu_backward_case(n, 2));
    sigmoid_entry.parity.push_back(sigmoid_forward_case(n, 4));
    sigmoid_entry.parity.push_back(sigmoid_backward_case(n, 5));
  }
  relu_entry.race.push_back(relu_backward_case(700, 2));
  sigmoid_entry.race.push_back(sigmoid_forward_case(700, 2));

  // The kinks at 0 skipped: within 0.05 of 0 (a step is 0.01) ...
  const OpInput x = input({2, 3, 2, 2}, 15, -2.0f, 2.0f);
  OpGrad kinked{
      "relu, kinks at 0 skipped", [](const std::vector<Tensor>& t) { return relu(t[0]); }, {x}};
  kinked.is_kink = [v = x.values](size_t, size_t i) { return std::fabs(v[i]) < 0.05f; };
  kinked.conditions = {{"at least 20 coordinates checked",
                        [](const GradCheckResult& r) { return r.checked >= 20; }}};
  relu_entry.grad.push_back(kinked);
  // ... and within 1.5 steps, on 200 values.
  const OpInput wide = input({200}, 61);
  OpGrad wide_kinked{"relu on 200 values, kinks within 1.5 steps skipped",
                     [](const std::vector<Tensor>& t) { return relu(t[0]); },
                     {wide},
                     62};
  wide_kinked.is_kink = [v = wide.values, step = wide_kinked.options.step](size_t, size_t i) {
    return std::fabs(v[i]) < 1.5 * step;
  };
  wide_kinked.conditions = {{"fewer than 10 coordinates skipped",
                             [](const GradCheckResult& r) { return r.skipped < 10; }}};
  relu_entry.grad.push_back(wide_kinked);
  sigmoid_entry.grad.push_back({"sigmoid",
                                [](const std::vector<Tensor>& t) { return sigmoid(t[0]); },
                                {input({2, 3, 2, 2}, 16, -3.0f, 3.0f)}});
  sigmoid_entry.grad.push_back({"sigmoid on 100 values in [-4, 4]",
                                [](const std::vector<Tensor>& t) { return sigmoid(t[0]); },
                                {input({100}, 63, -4.0f, 4.0f)},
                                64});

  relu_entry.bench.push_back(bench_of("BM_cpu_relu_forward_4x64x160x160", Device::cpu,
                                      relu_forward_case(kActivation, 23)));
  sigmoid_entry.bench.push_back(bench_of("BM_cpu_sigmoid_forward_4x64x160x160", Device::cpu,
                                         sigmoid_forward_case(kActivation, 24)));
  relu_entry.bench.push_back(
      bench_of("BM_cuda_relu_forward", Device::cuda, relu_forward_case(kActivation, 1)));
  relu_entry.bench.push_back(
      bench_of("BM_cuda_relu_backward", Device::cuda, relu_backward_case(kActivation, 1)));
  sigmoid_entry.bench.push_back(
      bench_of("BM_cuda_sigmoid_forward", Device::cuda, sigmoid_forward_case(kActivation, 1)));
  sigmoid_entry.bench.push_back(
      bench_of("BM_cuda_sigmoid_backward", Device::cuda, sigmoid_backward_case(kActivation, 1)));
  return {relu_entry, sigmoid_entry};
}

// ---- dropout2d

// x from seed, dy from seed + 1; the mask drawn at (rng_seed, offset), the offset advancing
// by n * c after each forward, as the engine's generator does.
OpCase dropout2d_case(int n, int c, int64_t hw, float p, uint64_t rng_seed, uint64_t offset,
                      uint64_t seed, Pass pass) {
  std::ostringstream name;
  name << "dropout2d n=" << n << " c=" << c << " hw=" << hw << " p=" << p;
  const int64_t total = int64_t(n) * c * hw;
  return {name.str(), 0.0,
          [=](OpRun& r) -> Call {
            float* mask = r.out(size_t(n) * c);
            const float* x = r.in(values(size_t(total), seed));
            float* y = r.out(total);
            const bool backward = pass != Pass::forward;
            const float* dy = backward ? r.in(values(size_t(total), seed + 1)) : nullptr;
            float* dx = backward ? r.out(total) : nullptr;
            Backend* be = &r.backend;
            Call forward = [=, at = offset]() mutable {
              be->dropout2d_forward(x, y, mask, n, c, hw, p, rng_seed, at);
              at += uint64_t(n) * uint64_t(c);
            };
            return pass_call(pass, forward,
                             [=] { be->dropout2d_backward(dy, mask, dx, n, c, hw); });
          },
          int64_t(pass_share(pass, 2.0 * total, 2.0 * total))};
}

OpEntry dropout2d_entry() {
  OpEntry e{"dropout2d", "dropout"};
  struct Size {
    int n, c;
    int64_t hw;
  };
  for (const Size& s : {Size{1, 1, 1}, Size{2, 3, 5}, Size{4, 16, 49}, Size{3, 67, 33}})
    for (float p : {0.0f, 0.4f, 0.9f})
      e.parity.push_back(dropout2d_case(s.n, s.c, s.hw, p, 2024, 12345, 1, Pass::both));
  e.race.push_back(dropout2d_case(2, 5, 70, 0.5f, 3, 0, 4, Pass::both));

  // The same mask on every evaluation: a generator replayed from the same seed and offset.
  e.grad.push_back({"dropout2d with a replayed generator",
                    [](const std::vector<Tensor>& t) {
                      Generator gen(3, 17);
                      return dropout2d(t[0], 0.5f, true, gen);
                    },
                    {input({2, 4, 2, 2}, 18)}});
  e.grad.push_back({"dropout2d, 12 channels, mask of (seed 5, offset 0)",
                    [](const std::vector<Tensor>& t) {
                      Generator gen(5, 0);
                      return dropout2d(t[0], 0.5f, true, gen);
                    },
                    {input({2, 6, 2, 2}, 72)},
                    73});

  e.bench.push_back(
      bench_of("BM_cpu_dropout2d_forward_4x64x160x160", Device::cpu,
               dropout2d_case(kBatch, kChannels, kPlane, 0.4f, 1, 0, 29, Pass::forward)));
  e.bench.push_back(
      bench_of("BM_cuda_dropout2d_forward", Device::cuda,
               dropout2d_case(kBatch, kChannels, kPlane, 0.4f, 1, 0, 1, Pass::forward)));
  e.bench.push_back(
      bench_of("BM_cuda_dropout2d_backward", Device::cuda,
               dropout2d_case(kBatch, kChannels, kPlane, 0.4f, 1, 0, 1, Pass::backward)));
  return e;
}

// ---- channel concat and split

std::string channels_name(int n, int ca, int cb, int64_t hw) {
  std::ostringstream os;
  os << "n=" << n << " ca=" << ca << " cb=" << cb << " hw=" << hw;
  return os.str();
}

// a from seed, b from seed + 1.
OpCase concat_case(int n, int ca, int cb, int64_t hw, uint64_t seed) {
  const size_t na = size_t(n) * ca * hw, nb = size_t(n) * cb * hw;
  return {"concat " + channels_name(n, ca, cb, hw), 0.0,
          [=](OpRun& r) -> Call {
            const float* a = r.in(values(na, seed));
            const float* b = r.in(values(nb, seed + 1));
            float* y = r.out(na + nb);
            Backend* be = &r.backend;
            return [=] { be->concat_channels(a, b, y, n, ca, cb, hw); };
          },
          2 * int64_t(na + nb)};
}

OpCase split_case(int n, int ca, int cb, int64_t hw, uint64_t seed, bool skip_b) {
  const size_t na = size_t(n) * ca * hw, nb = size_t(n) * cb * hw;
  return {(skip_b ? "split, b skipped " : "split ") + channels_name(n, ca, cb, hw), 0.0,
          [=](OpRun& r) -> Call {
            const float* y = r.in(values(na + nb, seed));
            float* a = r.out(na);
            float* b = skip_b ? nullptr : r.out(nb);
            Backend* be = &r.backend;
            return [=] { be->split_channels(y, a, b, n, ca, cb, hw); };
          },
          2 * int64_t(na + nb)};
}

OpEntry concat_entry() {
  OpEntry e{"concat_channels", "concat"};
  struct Size {
    int n, ca, cb;
    int64_t hw;
  };
  for (const Size& s :
       {Size{1, 1, 1, 1}, Size{2, 3, 5, 7}, Size{3, 64, 32, 33}, Size{2, 0, 4, 9}}) {
    e.parity.push_back(concat_case(s.n, s.ca, s.cb, s.hw, 1));
    e.parity.push_back(split_case(s.n, s.ca, s.cb, s.hw, 3, false));
    e.parity.push_back(split_case(s.n, s.ca, s.cb, s.hw, 4, true));
  }
  e.race.push_back(concat_case(2, 3, 4, 50, 5));

  const auto concat = [](const std::vector<Tensor>& t) { return concat_channels(t[0], t[1]); };
  e.grad.push_back({"concat_channels", concat, {input({2, 1, 2, 3}, 26), input({2, 3, 2, 3}, 27)}});
  // split_channels is the backward: checked through both halves.
  e.grad.push_back({"concat_channels, 3 + 2 channels of 5 pixels",
                    concat,
                    {input({2, 3, 5, 1}, 81), input({2, 2, 5, 1}, 82)},
                    83});

  // The U-Net's first skip: two (4, 64, 160, 160) halves into (4, 128, 160, 160).
  e.bench.push_back(bench_of("BM_cpu_concat_channels_4x128x160x160", Device::cpu,
                             concat_case(kBatch, kChannels, kChannels, kPlane, 30)));
  e.bench.push_back(bench_of("BM_cuda_concat_channels", Device::cuda,
                             concat_case(kBatch, kChannels, kChannels, kPlane, 1)));
  e.bench.push_back(bench_of("BM_cuda_split_channels", Device::cuda,
                             split_case(kBatch, kChannels, kChannels, kPlane, 1, false)));
  return e;
}

// ---- losses: probabilities away from 0 and 1 (seed), targets (seed + 1) binary as a mask
// or soft; the upstream dloss of the backward given.

std::vector<float> loss_targets(size_t n, uint64_t seed, bool soft) {
  std::vector<float> t = values(n, seed, 0.0f, 1.0f);
  if (!soft)
    for (float& v : t) v = v < 0.3f ? 1.0f : 0.0f;
  return t;
}

enum class Loss { soft_dice, bce };

// Soft Dice (smooth 1; stats kept for the backward) or mean BCE.
OpCase loss_case(Loss loss, int64_t n, bool soft, uint64_t seed, float dloss, Pass pass) {
  const bool dice = loss == Loss::soft_dice;
  return {with_n(dice ? "soft_dice" : "bce", n) + (soft ? " soft targets" : ""), 1e-10,
          [=](OpRun& r) -> Call {
            const float* p = r.in(values(size_t(n), seed, 0.02f, 0.98f));
            const float* t = r.in(loss_targets(size_t(n), seed + 1, soft));
            float* stats = dice ? r.out(2) : nullptr;
            float* value = r.out(1);
            const bool backward = pass != Pass::forward;
            const float* upstream = backward ? r.in(std::vector<float>{dloss}) : nullptr;
            float* dp = backward ? r.out(n) : nullptr;
            Backend* be = &r.backend;
            if (dice)
              return pass_call(
                  pass, [=] { be->soft_dice_forward(p, t, n, 1.0f, stats, value); },
                  [=] { be->soft_dice_backward(p, t, n, 1.0f, stats, upstream, dp); });
            return pass_call(
                pass, [=] { be->bce_forward(p, t, n, value); },
                [=] { be->bce_backward(p, t, n, upstream, dp); });
          },
          int64_t(pass_share(pass, 2.0 * n, 3.0 * n))};
}

// p at exactly 0 and 1: the log clamp at -100 and the 1e-12 floor of the backward.
OpCase bce_at_the_clamp_case() {
  return {"bce with p at 0 and 1", 1e-10, [](OpRun& r) -> Call {
            const float* p = r.in(std::vector<float>{0.0f, 1.0f, 0.0f, 1.0f, 0.5f});
            const float* t = r.in(std::vector<float>{0.0f, 1.0f, 1.0f, 0.0f, 0.5f});
            float* loss = r.out(1);
            Backend* be = &r.backend;
            return [=] { be->bce_forward(p, t, 5, loss); };
          }};
}

std::vector<OpEntry> loss_entries() {
  OpEntry dice{"soft_dice", "loss"}, bce{"bce", "loss"};
  for (int64_t n : kSizes)
    for (bool soft : {false, true}) {
      dice.parity.push_back(loss_case(Loss::soft_dice, n, soft, 31, -0.7f, Pass::both));
      bce.parity.push_back(loss_case(Loss::bce, n, soft, 31, 1.3f, Pass::both));
    }
  bce.parity.push_back(bce_at_the_clamp_case());
  dice.race.push_back(loss_case(Loss::soft_dice, 1500, true, 2, 1.0f, Pass::both));
  bce.race.push_back(loss_case(Loss::bce, 1500, true, 4, 1.0f, Pass::both));

  // Per-element gradients are O(1/n): the upstream is scaled by n.
  const Shape s{2, 1, 4, 4};
  std::vector<float> target = values(32, 30, 0.0f, 1.0f);
  for (float& v : target) v = v > 0.5f ? 1.0f : 0.0f;
  const std::vector<OpInput> inputs = {input(s, 31, 0.1f, 0.9f), constant(s, target)};
  OpGrad dice_check{"soft_dice_loss",
                    [](const std::vector<Tensor>& t) { return soft_dice_loss(t[0], t[1]); },
                    inputs};
  dice_check.upstream_scale = 32.0f;
  dice_check.options = step_and_threshold(1e-3, 1e-2);
  OpGrad bce_check = dice_check;
  bce_check.name = "bce_loss";
  bce_check.op = [](const std::vector<Tensor>& t) { return bce_loss(t[0], t[1]); };
  dice.grad.push_back(dice_check);
  bce.grad.push_back(bce_check);
  // 60 probabilities, binary targets, smooth 1, upstream -1.3; 40 with soft targets, 0.8.
  std::vector<float> mask = values(60, 102, 0.0f, 1.0f);
  for (float& v : mask) v = v > 0.6f ? 1.0f : 0.0f;
  dice.grad.push_back(
      {"soft_dice_loss with smooth 1 on 60 values",
       [](const std::vector<Tensor>& t) { return soft_dice_loss(t[0], t[1], 1.0f); },
       {input({60}, 101, 0.05f, 0.95f), constant({60}, mask)},
       99,
       {-1.3f}});
  bce.grad.push_back({"bce_loss with soft targets on 40 values",
                      [](const std::vector<Tensor>& t) { return bce_loss(t[0], t[1]); },
                      {input({40}, 103, 0.1f, 0.9f), constant({40}, values(40, 104, 0.0f, 1.0f))},
                      99,
                      {0.8f},
                      1.0f,
                      step_and_threshold(1e-3, 1e-2)});

  // The network's output: (4, 1, 160, 160) on the CPU, (16, 1, 160, 160) on the GPU.
  const OpBench::Unit us = OpBench::Unit::us;
  dice.bench.push_back(
      bench_of("BM_cpu_soft_dice_forward_backward_4x1x160x160", Device::cpu,
               loss_case(Loss::soft_dice, kBatch * kPlane, true, 32, 1.0f, Pass::both), us));
  bce.bench.push_back(bench_of("BM_cpu_bce_forward_backward_4x1x160x160", Device::cpu,
                               loss_case(Loss::bce, kBatch * kPlane, true, 34, 1.0f, Pass::both),
                               us));
  const int64_t prediction = 16 * kPlane;
  dice.bench.push_back(
      bench_of("BM_cuda_soft_dice_forward", Device::cuda,
               loss_case(Loss::soft_dice, prediction, true, 1, 1.0f, Pass::forward)));
  dice.bench.push_back(
      bench_of("BM_cuda_soft_dice_backward", Device::cuda,
               loss_case(Loss::soft_dice, prediction, true, 1, 1.0f, Pass::backward)));
  bce.bench.push_back(bench_of("BM_cuda_bce_forward", Device::cuda,
                               loss_case(Loss::bce, prediction, true, 1, 1.0f, Pass::forward)));
  bce.bench.push_back(bench_of("BM_cuda_bce_backward", Device::cuda,
                               loss_case(Loss::bce, prediction, true, 1, 1.0f, Pass::backward)));
  return {dice, bce};
}

// ---- Adam: param (seed), m (seed + 1), v (seed + 2) updated in place from grad (seed + 3);
// the step count advances after each call. Traffic: param, grad, m, v read; param, m, v written.

OpCase adam_case(int64_t n, const AdamParams& params, uint64_t seed) {
  std::ostringstream name;
  name << "adam n=" << n << " step=" << params.step << " wd=" << params.weight_decay
       << (params.decoupled_weight_decay ? " decoupled" : "");
  return {name.str(), 1e-12,
          [=](OpRun& r) -> Call {
            float* param = r.inout(values(size_t(n), seed));
            float* m = r.inout(values(size_t(n), seed + 1, -0.1f, 0.1f));
            float* v = r.inout(values(size_t(n), seed + 2, 0.0f, 0.01f));
            const float* grad = r.in(values(size_t(n), seed + 3));
            Backend* be = &r.backend;
            return [=, p = params]() mutable {
              be->adam_step(param, grad, m, v, n, p);
              ++p.step;
            };
          },
          7 * n};
}

OpEntry adam_entry() {
  OpEntry e{"adam_step", "adam"};
  for (int64_t n : {int64_t(1), int64_t(300), int64_t(4099)})
    for (int variant = 0; variant < 3; ++variant) {
      AdamParams p;
      p.lr = 1e-2f;
      p.step = variant == 0 ? 1 : 7;  // the first step and a later one
      p.weight_decay = variant == 0 ? 0.0f : 0.05f;
      p.decoupled_weight_decay = variant == 2;  // AdamW
      e.parity.push_back(adam_case(n, p, 41));
    }
  AdamParams third;
  third.step = 3;
  e.race.push_back(adam_case(1500, third, 11));
  // About the parameters of the paper's U-Net (64-128-256).
  const int64_t parameters = 7'800'000;
  AdamParams decay;
  decay.weight_decay = 1e-4f;
  e.bench.push_back(
      bench_of("BM_cpu_adam_step_7_8M", Device::cpu, adam_case(parameters, decay, 36)));
  e.bench.push_back(bench_of("BM_cuda_adam_step", Device::cuda, adam_case(parameters, {}, 1)));
  return e;
}

}  // namespace

namespace detail {

std::vector<OpEntry> core_entries() {
  std::vector<OpEntry> all = fill_random_entries();
  all.push_back(ct_window_entry());
  all.push_back(gemm_entry());
  for (std::vector<OpEntry> part : {elementwise_entries(), activation_entries()})
    for (OpEntry& e : part) all.push_back(std::move(e));
  all.push_back(dropout2d_entry());
  all.push_back(concat_entry());
  for (OpEntry& e : loss_entries()) all.push_back(std::move(e));
  all.push_back(adam_entry());
  return all;
}

}  // namespace detail
}  // namespace ich::test::ops
