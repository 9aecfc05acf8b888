// Helpers shared by the tests of tests/kernels: the CPU backend, float <-> double copies and
// the weighted sum L = <r, y> through which every backward is checked (see gradcheck.h).
#pragma once

#include <cstddef>
#include <vector>

#include "common/gradcheck.h"
#include "kernels/backend.h"

namespace ich::test {

// The CPU backend works on host memory, so std::vector storage is passed to it directly.
inline Backend& cpu_backend() {
  return backend_for(Device::cpu());
}

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

inline double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]);
    if (!(d <= worst)) worst = d;  // NaN sticks
  }
  return worst;
}

}  // namespace ich::test
