// Non-finite voxels (NaN, +Inf, -Inf): counted before anything replaces them, and the
// statistics of a volume taken over its finite voxels only (as numpy's nanmin / nanmax /
// nanmean; an infinity is left out as well, since the finite range is what is asked for).
//
// Shared by every reader whose format can hold them: NIfTI float32/float64 and DICOM float
// pixel data (integer pixels can never be non-finite).
#pragma once

#include <cstdint>

namespace ich::data {

int64_t count_nonfinite(const float* values, int64_t n);
int64_t count_nonfinite(const double* values, int64_t n);

struct FiniteStats {
  int64_t finite = 0;
  int64_t nonfinite = 0;
  // Over the finite values; all three are NaN when there is none.
  double min = 0, max = 0, mean = 0;
};

// One pass; the mean is accumulated in double.
FiniteStats finite_stats(const float* values, int64_t n);

}  // namespace ich::data
