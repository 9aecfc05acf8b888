#include "data/nonfinite.h"

#include <cmath>
#include <limits>

namespace ich::data {

namespace {

template <typename T>
int64_t count_nonfinite_of(const T* values, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += std::isfinite(values[i]) ? 0 : 1;
  return count;
}

}  // namespace

int64_t count_nonfinite(const float* values, int64_t n) {
  return count_nonfinite_of(values, n);
}
int64_t count_nonfinite(const double* values, int64_t n) {
  return count_nonfinite_of(values, n);
}

FiniteStats finite_stats(const float* values, int64_t n) {
  FiniteStats s;
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = values[i];
    if (!std::isfinite(v)) {
      ++s.nonfinite;
      continue;
    }
    ++s.finite;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    sum += v;
  }
  if (s.finite == 0) {
    s.min = s.max = s.mean = std::numeric_limits<double>::quiet_NaN();
  } else {
    s.min = lo;
    s.max = hi;
    s.mean = sum / double(s.finite);
  }
  return s;
}

}  // namespace ich::data
