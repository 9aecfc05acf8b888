// Parity of cuda-core's primitives (fill/random, window, gemm, elementwise, sum,
// activations, dropout2d, concat/split, losses, Adam) against the CPU reference, on every
// target of parity_common.h. Shapes include 1, odd sizes and sizes that are not multiples
// of the block (256) or of the GEMM tile (64).
//
// Ceilings: 0 where both sides compute the same float operations in the same order
// (window, relu, dropout masks, concat); 1e-13 where nvcc may fuse a multiply-add the
// CPU rounds twice; 1e-10 where summation order or libm's expf/logf differ.
#include "parity/parity_common.h"

namespace ich::test::parity {
namespace {

const std::vector<int64_t> kSizes = {1, 7, 255, 256, 257, 1000, 4097, 70001};

std::string with_n(const char* op, int64_t n) {
  return std::string(op) + " n=" + std::to_string(n);
}

TEST_CASE("fill, uniform, normal", "[parity]") {
  std::vector<ParityCase> cases;
  for (int64_t n : kSizes) {
    cases.push_back(
        {with_n("fill", n), 0.0, [n](ParityRun& r) { r.backend.fill(r.out(n), n, -2.5f); }});
    cases.push_back({with_n("uniform", n), 1e-13,
                     [n](ParityRun& r) { r.backend.uniform(r.out(n), n, 1234, 77, -3.0f, 5.0f); }});
    cases.push_back({with_n("normal", n), 1e-10, [n](ParityRun& r) {
                       r.backend.normal(r.out(n), n, 99, 1u << 20, 0.5f, 2.0f);
                     }});
  }
  check_cases(cases);
}

TEST_CASE("ct_window float and int16", "[parity]") {
  std::vector<ParityCase> cases;
  for (int64_t n : kSizes) {
    cases.push_back({with_n("ct_window", n), 0.0, [n](ParityRun& r) {
                       r.backend.ct_window(r.in(values(n, 1, -1100.0f, 1500.0f)), r.out(n), n,
                                           40.0f, 120.0f);
                     }});
    cases.push_back({with_n("ct_window_i16", n), 0.0, [n](ParityRun& r) {
                       std::vector<int16_t> hu(n);
                       const std::vector<float> v = values(n, 2, -1024.0f, 3071.0f);
                       for (int64_t i = 0; i < n; ++i) hu[i] = int16_t(std::lround(v[i]));
                       r.backend.ct_window_i16(r.in(hu), r.out(n), n, 40.0f, 80.0f);
                     }});
  }
  check_cases(cases);
}

TEST_CASE("gemm: every transpose, odd sizes, padded strides, alpha and beta", "[parity]") {
  struct Shape {
    int m, n, k;
  };
  const std::vector<Shape> shapes = {{1, 1, 1},    {5, 7, 3},      {64, 64, 16},
                                     {65, 33, 17}, {100, 70, 130}, {3, 130, 1}};
  std::vector<ParityCase> cases;
  for (const Shape& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int scaled = 0; scaled < 2; ++scaled) {
          const float alpha = scaled ? 0.5f : 1.0f, beta = scaled ? -2.0f : 0.0f;
          std::ostringstream name;
          name << "gemm m=" << s.m << " n=" << s.n << " k=" << s.k << (ta ? " A^T" : "")
               << (tb ? " B^T" : "") << " alpha=" << alpha << " beta=" << beta;
          cases.push_back({name.str(), 1e-10, [=](ParityRun& r) {
                             // Stored shapes, each with 3 columns of padding in its stride.
                             const int a_rows = ta ? s.k : s.m, a_cols = ta ? s.m : s.k;
                             const int b_rows = tb ? s.n : s.k, b_cols = tb ? s.k : s.n;
                             const int lda = a_cols + 3, ldb = b_cols + 3, ldc = s.n + 3;
                             const float* a = r.in(values(size_t(a_rows) * lda, 10));
                             const float* b = r.in(values(size_t(b_rows) * ldb, 11));
                             // beta == 0: C must not be read, so it starts as NaN.
                             float* c = beta == 0.0f ? r.out(size_t(s.m) * ldc)
                                                     : r.inout(values(size_t(s.m) * ldc, 12));
                             r.backend.gemm(ta, tb, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c,
                                            ldc);
                             // The padding columns of C are never written: make them equal.
                             if (beta == 0.0f)
                               for (int row = 0; row < s.m; ++row)
                                 r.backend.fill(c + size_t(row) * ldc + s.n, 3, 0.0f);
                           }});
        }
  check_cases(cases);
}

TEST_CASE("add, mul, scale, axpy, sum", "[parity]") {
  std::vector<ParityCase> cases;
  for (int64_t n : kSizes) {
    cases.push_back({with_n("add", n), 0.0, [n](ParityRun& r) {
                       r.backend.add(r.in(values(n, 1)), r.in(values(n, 2)), r.out(n), n);
                     }});
    cases.push_back({with_n("mul", n), 0.0, [n](ParityRun& r) {
                       r.backend.mul(r.in(values(n, 3)), r.in(values(n, 4)), r.out(n), n);
                     }});
    cases.push_back({with_n("scale", n), 0.0, [n](ParityRun& r) {
                       r.backend.scale(r.in(values(n, 5)), r.out(n), n, -1.75f);
                     }});
    cases.push_back({with_n("axpy", n), 1e-13, [n](ParityRun& r) {
                       r.backend.axpy(0.3f, r.in(values(n, 6)), r.inout(values(n, 7)), n);
                     }});
    cases.push_back({with_n("sum", n), 1e-10, [n](ParityRun& r) {
                       r.backend.sum(r.in(values(n, 8, 0.0f, 1.0f)), n, r.out(1));
                     }});
  }
  check_cases(cases);
}

TEST_CASE("relu and sigmoid, forward and backward", "[parity]") {
  std::vector<ParityCase> cases;
  for (int64_t n : kSizes) {
    cases.push_back({with_n("relu_forward", n), 0.0, [n](ParityRun& r) {
                       r.backend.relu_forward(r.in(values(n, 1)), r.out(n), n);
                     }});
    cases.push_back({with_n("relu_backward", n), 0.0, [n](ParityRun& r) {
                       r.backend.relu_backward(r.in(values(n, 2)), r.in(values(n, 3)), r.out(n), n);
                     }});
    cases.push_back({with_n("sigmoid_forward", n), 1e-10, [n](ParityRun& r) {
                       r.backend.sigmoid_forward(r.in(values(n, 4, -12.0f, 12.0f)), r.out(n), n);
                     }});
    cases.push_back({with_n("sigmoid_backward", n), 1e-13, [n](ParityRun& r) {
                       r.backend.sigmoid_backward(r.in(values(n, 5)),
                                                  r.in(values(n, 6, 0.0f, 1.0f)), r.out(n), n);
                     }});
  }
  check_cases(cases);
}

TEST_CASE("dropout2d: identical masks, forward and backward", "[parity]") {
  struct Shape {
    int n, c;
    int64_t hw;
  };
  const std::vector<Shape> shapes = {{1, 1, 1}, {2, 3, 5}, {4, 16, 49}, {3, 67, 33}};
  std::vector<ParityCase> cases;
  for (const Shape& s : shapes)
    for (float p : {0.0f, 0.4f, 0.9f}) {
      const int64_t total = int64_t(s.n) * s.c * s.hw;
      std::ostringstream name;
      name << "dropout2d n=" << s.n << " c=" << s.c << " hw=" << s.hw << " p=" << p;
      cases.push_back({name.str(), 0.0, [=](ParityRun& r) {
                         float* mask = r.out(size_t(s.n) * s.c);
                         r.backend.dropout2d_forward(r.in(values(total, 1)), r.out(total), mask,
                                                     s.n, s.c, s.hw, p, 2024, 12345);
                         r.backend.dropout2d_backward(r.in(values(total, 2)), mask, r.out(total),
                                                      s.n, s.c, s.hw);
                       }});
    }
  check_cases(cases);
}

TEST_CASE("concat_channels and split_channels", "[parity]") {
  struct Shape {
    int n, ca, cb;
    int64_t hw;
  };
  const std::vector<Shape> shapes = {{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 64, 32, 33}, {2, 0, 4, 9}};
  std::vector<ParityCase> cases;
  for (const Shape& s : shapes) {
    const size_t na = size_t(s.n) * s.ca * s.hw, nb = size_t(s.n) * s.cb * s.hw, ny = na + nb;
    std::ostringstream name;
    name << "n=" << s.n << " ca=" << s.ca << " cb=" << s.cb << " hw=" << s.hw;
    cases.push_back({"concat " + name.str(), 0.0, [=](ParityRun& r) {
                       r.backend.concat_channels(r.in(values(na, 1)), r.in(values(nb, 2)),
                                                 r.out(ny), s.n, s.ca, s.cb, s.hw);
                     }});
    cases.push_back({"split " + name.str(), 0.0, [=](ParityRun& r) {
                       r.backend.split_channels(r.in(values(ny, 3)), r.out(na), r.out(nb), s.n,
                                                s.ca, s.cb, s.hw);
                     }});
    cases.push_back({"split, b skipped " + name.str(), 0.0, [=](ParityRun& r) {
                       r.backend.split_channels(r.in(values(ny, 4)), r.out(na), nullptr, s.n, s.ca,
                                                s.cb, s.hw);
                     }});
  }
  check_cases(cases);
}

TEST_CASE("soft dice and BCE, forward and backward", "[parity]") {
  std::vector<ParityCase> cases;
  for (int64_t n : kSizes) {
    // Probabilities away from 0 and 1, binary targets (as a mask), and a soft target case.
    auto probabilities = [n] { return values(n, 31, 0.02f, 0.98f); };
    auto targets = [n](bool soft) {
      std::vector<float> t = values(n, 32, 0.0f, 1.0f);
      if (!soft)
        for (float& v : t) v = v < 0.3f ? 1.0f : 0.0f;
      return t;
    };
    for (bool soft : {false, true}) {
      const std::string kind = soft ? " soft targets" : "";
      cases.push_back({with_n("soft_dice", n) + kind, 1e-10, [=](ParityRun& r) {
                         const float* p = r.in(probabilities());
                         const float* t = r.in(targets(soft));
                         float* stats = r.out(2);
                         float* loss = r.out(1);
                         r.backend.soft_dice_forward(p, t, n, 1.0f, stats, loss);
                         r.backend.soft_dice_backward(p, t, n, 1.0f, stats,
                                                      r.in(std::vector<float>{-0.7f}), r.out(n));
                       }});
      cases.push_back({with_n("bce", n) + kind, 1e-10, [=](ParityRun& r) {
                         const float* p = r.in(probabilities());
                         const float* t = r.in(targets(soft));
                         r.backend.bce_forward(p, t, n, r.out(1));
                         r.backend.bce_backward(p, t, n, r.in(std::vector<float>{1.3f}), r.out(n));
                       }});
    }
  }
  // p at exactly 0 and 1: the log clamp at -100 and the 1e-12 floor of the backward.
  cases.push_back({"bce with p at 0 and 1", 1e-10, [](ParityRun& r) {
                     const std::vector<float> p = {0.0f, 1.0f, 0.0f, 1.0f, 0.5f};
                     const std::vector<float> t = {0.0f, 1.0f, 1.0f, 0.0f, 0.5f};
                     r.backend.bce_forward(r.in(p), r.in(t), 5, r.out(1));
                   }});
  check_cases(cases);
}

TEST_CASE("adam_step: Adam and AdamW, first and later steps", "[parity]") {
  std::vector<ParityCase> cases;
  for (int64_t n : {int64_t(1), int64_t(300), int64_t(4099)})
    for (int variant = 0; variant < 3; ++variant) {
      AdamParams p;
      p.lr = 1e-2f;
      p.step = variant == 0 ? 1 : 7;
      p.weight_decay = variant == 0 ? 0.0f : 0.05f;
      p.decoupled_weight_decay = variant == 2;
      std::ostringstream name;
      name << "adam n=" << n << " step=" << p.step << " wd=" << p.weight_decay
           << (p.decoupled_weight_decay ? " decoupled" : "");
      cases.push_back({name.str(), 1e-12, [=](ParityRun& r) {
                         float* param = r.inout(values(n, 41));
                         float* m = r.inout(values(n, 42, -0.1f, 0.1f));
                         float* v = r.inout(values(n, 43, 0.0f, 0.01f));
                         r.backend.adam_step(param, r.in(values(n, 44)), m, v, n, p);
                       }});
    }
  check_cases(cases);
}

}  // namespace
}  // namespace ich::test::parity
