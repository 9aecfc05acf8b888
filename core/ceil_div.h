// Integer rounding shared by every layer and by CUDA kernels: grid sizes, task counts, tiles,
// allocation size classes. The result has the type of a + b, as the written-out expression
// (a + b - 1) / b it replaces.
#pragma once

#include <type_traits>

#include "core/host_device.h"

namespace ich {

// ceil(a / b) for a >= 0 and b > 0.
template <typename A, typename B>
ICH_HD constexpr auto ceil_div(A a, B b) -> decltype(a + b) {
  static_assert(std::is_integral<A>::value && std::is_integral<B>::value, "ceil_div of integers");
  return (a + b - 1) / b;
}

// a rounded up to a multiple of b (a >= 0, b > 0).
template <typename A, typename B>
ICH_HD constexpr auto round_up(A a, B b) -> decltype(a + b) {
  return ceil_div(a, b) * b;
}

}  // namespace ich
