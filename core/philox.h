// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11), shared by
// every backend so that CPU and GPU draw the identical numbers.
//
// The contract, on every backend:
//   element i of a draw with (seed, offset) uses
//     counter = {lo32(offset + i), hi32(offset + i), 0, 0}, key = {lo32(seed), hi32(seed)}
//   uniform: (philox(...)[0] >> 8) * 2^-24                  in [0, 1)
//   normal:  Box-Muller on words 0 and 1 (u1 from word 0 mapped to (0, 1], u2 from word 1)
// A caller that draws n numbers advances its offset by n for the next draw.
// Dropout2d draws one uniform per (sample, channel) at index n*C + c: keep when u >= p.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace ich {

struct Philox4 {
  uint32_t v[4];
};

ICH_HD uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

ICH_HD Philox4 philox4x32_10(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
    const uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

ICH_HD float philox_uniform(uint64_t seed, uint64_t index) {
  return static_cast<float>(philox4x32_10(index, seed).v[0] >> 8) * (1.0f / 16777216.0f);
}

ICH_HD float philox_normal(uint64_t seed, uint64_t index) {
  const Philox4 r = philox4x32_10(index, seed);
  const float u1 = (static_cast<float>(r.v[0] >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  const float u2 = static_cast<float>(r.v[1] >> 8) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

}  // namespace ich
