#include "data/blobs.h"

#include "core/error.h"
#include "core/philox.h"

namespace ich {

namespace {

// Draws of one sample: index * kDrawsPerSample + k; k < 16 for the discs, then the noise.
constexpr uint64_t kDrawsPerSample = uint64_t(1) << 32;

void draw_sample(float* image, float* mask, int size, uint64_t seed, uint64_t index) {
  const uint64_t base = index * kDrawsPerSample;
  const auto u = [&](uint64_t k) { return philox_uniform(seed, base + k); };
  const int discs = 1 + static_cast<int>(u(0) * 3.0f);  // 1..3
  float cx[3], cy[3], r[3];
  for (int d = 0; d < discs; ++d) {
    r[d] = size * (0.08f + 0.12f * u(1 + 3 * d));
    cx[d] = r[d] + (size - 2.0f * r[d]) * u(2 + 3 * d);
    cy[d] = r[d] + (size - 2.0f * r[d]) * u(3 + 3 * d);
  }
  // (size, size)
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      bool inside = false;
      for (int d = 0; d < discs; ++d) {
        const float dx = x + 0.5f - cx[d], dy = y + 0.5f - cy[d];
        inside = inside || dx * dx + dy * dy <= r[d] * r[d];
      }
      const int64_t i = int64_t(y) * size + x;
      const float noise = philox_normal(seed, base + 16 + static_cast<uint64_t>(i));
      image[i] = (inside ? 0.8f : 0.2f) + 0.1f * noise;
      mask[i] = inside ? 1.0f : 0.0f;
    }
  }
}

}  // namespace

BlobBatch make_blob_batch(int n, int size, uint64_t seed, uint64_t first_index) {
  ICH_CHECK(n >= 1 && size >= 8,
            "blob batch: n " << n << " must be >= 1 and size " << size << " >= 8");
  BlobBatch b;
  b.n = n;
  b.size = size;
  const size_t plane = size_t(size) * size;
  b.images.resize(n * plane);
  b.masks.resize(n * plane);
  for (int s = 0; s < n; ++s) {
    draw_sample(b.images.data() + s * plane, b.masks.data() + s * plane, size, seed,
                first_index + static_cast<uint64_t>(s));
  }
  return b;
}

}  // namespace ich
