// A synthetic segmentation task held in memory: bright discs on a noisy background, and
// their exact masks. It is the demo's task (ichseg demo), the U-Net training test's and the
// training-step benchmark's input; the CT pipeline's synthetic data is the head phantom
// (data/phantom.h). In namespace ich rather than ich::data: it is tensor-shaped input for
// the engine's tests and benchmarks, not part of the CT data pipeline.
//
// Sample `index` of a task with `seed` is a pure function of (seed, index) (Philox, host
// side), so batches can be drawn in any order and reproduced.
#pragma once

#include <cstdint>
#include <vector>

namespace ich {

struct BlobBatch {
  int n = 0, size = 0;
  std::vector<float> images;  // (n, 1, size, size): background ~0.2, discs ~0.8, noise std 0.1
  std::vector<float> masks;   // (n, 1, size, size): 1 inside a disc, 0 elsewhere
};

// Samples first_index .. first_index + n - 1. size >= 8.
BlobBatch make_blob_batch(int n, int size, uint64_t seed, uint64_t first_index);

}  // namespace ich
