// The size-class rule both caching allocators follow (the CPU backend's host cache and the
// CUDA caching allocator): granules up to 1 MiB, then quarter powers of two, so a class is at
// most 25% above the request there. Checked on hand values and on the slack of awkward sizes.
#pragma once

#include <catch2/catch.hpp>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <utility>

namespace ich::test {

// `below_1mib`: requests and their classes by hand, in granules; above 1 MiB the rule is the
// same for both allocators.
inline void check_size_classes(const std::function<size_t(size_t)>& size_class, size_t granule,
                               std::initializer_list<std::pair<size_t, size_t>> below_1mib,
                               std::initializer_list<size_t> awkward) {
  const std::pair<size_t, size_t> above_1mib[] = {{1 << 20, 1 << 20},
                                                  {(1 << 20) + 1, (1 << 20) + (1 << 18)},
                                                  {3 << 20, 3 << 20},
                                                  {(3 << 20) + 1, 7 << 19}};  // 3.5 MiB
  for (const auto& [bytes, expected] : below_1mib) {
    INFO(bytes << " bytes");
    CHECK(size_class(bytes) == expected);
  }
  for (const auto& [bytes, expected] : above_1mib) {
    INFO(bytes << " bytes");
    CHECK(size_class(bytes) == expected);
  }
  for (size_t bytes : awkward) {
    const size_t c = size_class(bytes);
    INFO(bytes << " bytes, class " << c);
    CHECK(c >= bytes);
    CHECK(c % granule == 0);
    CHECK(double(c) <= 1.25 * double(bytes) + 512.0);  // at most 25% slack above 1 MiB
  }
}

}  // namespace ich::test
