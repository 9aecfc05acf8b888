// The data layer's small seeded generator: SplitMix64 (Steele, Lea, Flood 2014).
// Every random choice in synth, splits, sampling and augmentation comes from an Rng built
// from (seed, stream...) with mix(), so that one patient, one epoch or one sample draws the
// same numbers whatever else was drawn before it, and the same seed gives the same bytes.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace ich::data {

inline uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// One 64-bit key from a seed and stream numbers (order matters).
inline uint64_t mix(std::initializer_list<uint64_t> parts) {
  uint64_t state = 0x6A09E667F3BCC908ULL;
  uint64_t key = 0;
  for (uint64_t p : parts) {
    state ^= p + 0x9E3779B97F4A7C15ULL + (state << 6) + (state >> 2);
    key = splitmix64(&state);
  }
  return key;
}

class Rng {
 public:
  explicit Rng(uint64_t key) : state_(key) {}

  uint64_t next_u64() { return splitmix64(&state_); }
  // [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // 0 .. n-1 (n >= 1); the modulo bias is below 2^-40 for the sizes used here.
  uint64_t below(uint64_t n) { return next_u64() % n; }
  int range(int lo, int hi) {
    return lo + static_cast<int>(below(uint64_t(hi - lo + 1)));
  }  // [lo, hi]
  bool chance(double p) { return uniform() < p; }
  // Standard normal, Box-Muller (one value per call; the second is dropped for simplicity).
  double normal() {
    const double u1 = (double(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace ich::data
