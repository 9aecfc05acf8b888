// Finite-difference gradient checking (the idea of caffe's GradientChecker).
//
// A primitive or an op y = f(x) is checked through a scalar L(x) = <r, f(x)> with a
// fixed random r: its analytic gradient is backward(dy = r), and each coordinate is
// compared with the central difference (L(x + h e_i) - L(x - h e_i)) / 2h computed in
// double. A coordinate passes when |analytic - numeric| <= threshold * max(|a|, |n|, 1).
// Coordinates where f has a kink near x (ReLU at 0, max-pool ties) are skipped by the
// caller-supplied predicate, never by loosening the threshold.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace ich::test {

struct GradCheckOptions {
  double step = 1e-2;       // h, in units of x
  double threshold = 1e-2;  // relative tolerance of the form thr * max(|a|, |n|, 1)
  // Optional: true for coordinates where f is not differentiable near x (skip them).
  std::function<bool(size_t i)> is_kink;
};

struct GradCheckResult {
  size_t checked = 0;
  size_t skipped = 0;
  size_t failed = 0;
  double worst_error = 0.0;  // largest |a - n| / max(|a|, |n|, 1)
  std::string first_failure;

  bool ok() const { return failed == 0 && checked > 0; }
};

// loss(x) evaluates L at x (it may round x to float internally; differences are taken in
// double). analytic[i] is the gradient the backward rule produced for x[i].
inline GradCheckResult check_gradient(const std::function<double(const std::vector<double>&)>& loss,
                                      std::vector<double> x, const std::vector<double>& analytic,
                                      const GradCheckOptions& opt = {}) {
  GradCheckResult r;
  if (analytic.size() != x.size()) {
    r.failed = 1;
    r.first_failure = "analytic gradient has " + std::to_string(analytic.size()) +
                      " entries, x has " + std::to_string(x.size());
    return r;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (opt.is_kink && opt.is_kink(i)) {
      ++r.skipped;
      continue;
    }
    const double x0 = x[i];
    x[i] = x0 + opt.step;
    const double lp = loss(x);
    x[i] = x0 - opt.step;
    const double lm = loss(x);
    x[i] = x0;
    const double numeric = (lp - lm) / (2.0 * opt.step);
    const double a = analytic[i];
    const double scale = std::fmax(std::fmax(std::fabs(a), std::fabs(numeric)), 1.0);
    const double err = std::fabs(a - numeric) / scale;
    ++r.checked;
    if (err > r.worst_error) r.worst_error = err;
    if (!(err <= opt.threshold)) {  // NaN fails too
      if (r.failed == 0) {
        std::ostringstream os;
        os << "coordinate " << i << ": analytic " << a << " vs numeric " << numeric
           << " (relative error " << err << " > " << opt.threshold << ")";
        r.first_failure = os.str();
      }
      ++r.failed;
    }
  }
  return r;
}

// Normalised mean squared error sum((a-b)^2) / sum(b^2), the parity measure (ggml's
// test-backend-ops). Returns +inf when either side holds NaN or Inf, so those always fail.
inline double nmse(const float* a, const float* ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(ref[i])) return INFINITY;
    const double d = double(a[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  if (den == 0.0) return num == 0.0 ? 0.0 : INFINITY;
  return num / den;
}

// Deterministic test data: n values uniform in [lo, hi) from a fixed seed (a small LCG
// so that tests do not depend on the engine's RNG).
inline std::vector<float> random_values(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(n);
  uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (auto& x : v) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = double(s >> 11) * (1.0 / 9007199254740992.0);
    x = float(lo + (hi - lo) * u);
  }
  return v;
}

}  // namespace ich::test
