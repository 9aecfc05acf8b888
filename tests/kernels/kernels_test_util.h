// Helpers shared by the tests of tests/kernels: the CPU backend, float <-> double copies and
// the weighted sum L = <r, y> through which a backward is checked (see gradcheck.h).
#pragma once

#include <omp.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstring>
#include <functional>
#include <vector>

#include "common/gradcheck.h"
#include "kernels/backend.h"

namespace ich::test {

// The CPU backend works on host memory, so std::vector storage is passed to it directly.
inline Backend& cpu_backend() {
  return backend_for(Device::cpu());
}

// Limits OpenMP to `threads` for one scope (the determinism tests: the same bits for 1 and 2).
class OmpThreads {
 public:
  explicit OmpThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

inline std::vector<float> to_float(const std::vector<double>& v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = static_cast<float>(v[i]);
  return f;
}

// <r, y> in double.
inline double weighted_sum(const std::vector<float>& r, const std::vector<float>& y) {
  double s = 0.0;
  for (size_t i = 0; i < y.size(); ++i) s += double(r[i]) * double(y[i]);
  return s;
}

// The gradient check of x in y = f(x) through L = <r, f(x)>: `analytic` is what the backward
// primitive gave for upstream r.
inline GradCheckResult check_weighted_gradient(
    const std::vector<float>& r,
    const std::function<std::vector<float>(const std::vector<float>&)>& f,
    const std::vector<float>& x, const std::vector<float>& analytic,
    const GradCheckOptions& opt = {}) {
  return check_gradient(
      [&](const std::vector<double>& v) { return weighted_sum(r, f(to_float(v))); }, to_double(x),
      to_double(analytic), opt);
}

inline void expect_gradient_ok(const GradCheckResult& r) {
  INFO(r.first_failure);
  CHECK(r.ok());
}

// Bitwise equal (NaN payloads and signed zeros included).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]);
    if (!(d <= worst)) worst = d;  // NaN sticks
  }
  return worst;
}

}  // namespace ich::test
