// Checks shared by the op families of engine/ops_*.cpp (not part of the public API).
#pragma once

#include <climits>

#include "engine/tensor.h"

namespace ich::detail {

// Throws unless `t` is a defined float32 tensor of `rank` dimensions (rank 0: any).
inline void check_input(const char* op, const char* name, const Tensor& t, int rank = 0) {
  ICH_CHECK(t.defined(), op << ": " << name << " is an undefined tensor");
  ICH_CHECK(t.dtype() == DType::f32,
            op << ": " << name << " must be float32, got " << t.describe());
  ICH_CHECK(rank == 0 || t.ndim() == rank, op << ": " << name << " must have " << rank
                                              << " dimensions (N, C, H, W), got shape "
                                              << t.shape_str());
}

// Backend primitives take int sizes; larger dimensions are refused rather than wrapped.
inline int to_int(int64_t v, const char* what) {
  ICH_CHECK(v <= INT_MAX, what << " = " << v << " does not fit the backend's 32-bit sizes");
  return static_cast<int>(v);
}

}  // namespace ich::detail
