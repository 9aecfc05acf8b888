#include "data/geometry.h"

#include <cmath>

namespace ich::data {

Affine scaling_affine(const double spacing[3]) {
  Affine a;
  for (int r = 0; r < 3; ++r) a.m[r][r] = spacing[r];
  return a;
}

Affine lps_to_ras(const Affine& lps) {
  Affine ras = lps;
  for (int c = 0; c < 4; ++c) {
    ras.m[0][c] = -lps.m[0][c];
    ras.m[1][c] = -lps.m[1][c];
  }
  return ras;
}

std::array<double, 3> affine_spacing(const Affine& a) {
  std::array<double, 3> s;
  for (int c = 0; c < 3; ++c) {
    const std::array<double, 3> v = a.column(c);
    s[c] = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  }
  return s;
}

bool affine_is_orthogonal(const Affine& a, double tolerance) {
  const std::array<double, 3> s = affine_spacing(a);
  for (int c0 = 0; c0 < 3; ++c0) {
    for (int c1 = c0 + 1; c1 < 3; ++c1) {
      if (s[c0] == 0 || s[c1] == 0) return false;
      double dot = 0;
      for (int r = 0; r < 3; ++r) dot += a.m[r][c0] * a.m[r][c1];
      if (std::fabs(dot / (s[c0] * s[c1])) > tolerance) return false;
    }
  }
  return true;
}

double affine_determinant(const Affine& a) {
  const auto& m = a.m;
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
         m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

}  // namespace ich::data
