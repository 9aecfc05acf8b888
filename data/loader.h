// Training batches from a SliceSource: whole slices or patches, seeded augmentation, and a
// background thread that prepares the next batches while the training step runs.
//
// Determinism: the samples of epoch e, their order, and every random draw of sample i come
// from generators keyed by (seed, e) and (seed, e, i); the thread only decides when a batch
// is made, never what is in it. The same seed gives the same batch stream, byte for byte.
//
// Patches (as the ICH paper: 160x160, stride 80): every slice is cut into a grid of patches
// (the last row/column shifted to end at the border); a patch is positive when its mask
// has any pixel set. Each epoch uses every positive patch and negatives_per_positive times
// as many negatives drawn at random from the negative ones (all of them when the source
// has no positive patch, or when negatives_per_positive < 0).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/slices.h"

namespace ich::data {

struct LoaderOptions {
  int batch_size = 8;
  int patch = 0;  // 0: whole slices (all of one size); otherwise square patches of this size
  int stride = 80;
  double negatives_per_positive = 1.0;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  int prefetch = 2;  // batches made ahead by the background thread (>= 1)
  // Data-parallel sharding: this loader makes only the batches of shard `shard` of `shards`:
  // the positions shard, shard + shards, shard + 2 shards, ... of the epoch's sample order
  // (the same order on every shard), cut to floor(n / shards) positions each so every shard
  // takes as many steps and no sample is seen twice in an epoch (the drop tail rule of
  // data/sampler.h's DistributedSampler, which makes the cut). The augmentation
  // draws of a sample depend on its position in the whole epoch, not on the shard, so
  // `shards` loaders together make exactly the samples one unsharded loader would, minus the
  // n mod shards dropped positions.
  int shard = 0;
  int shards = 1;
  AugmentOptions augment;
};

// A batch as plain host memory; the training code turns it into tensors.
struct Batch {
  int n = 0, h = 0, w = 0;
  std::vector<float> images;  // (n, 1, h, w) in [0, 1]
  std::vector<float> masks;   // (n, 1, h, w) 0 or 1
  std::vector<SliceId> ids;   // (n)
  std::vector<int> x0, y0;    // (n) where the sample was cut from its slice (0, 0 for whole slices)
};

class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const SliceSource> source, const LoaderOptions& options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  size_t samples_per_epoch() const { return samples_per_epoch_; }
  size_t batches_per_epoch() const;
  size_t positive_patches() const { return positives_.size(); }
  size_t negative_patches() const { return negatives_.size(); }

  // Starts making the batches of an epoch (abandoning any unfinished one).
  void start_epoch(int epoch);
  // The next batch of the current epoch; false after its last one. Rethrows an error of the
  // background thread (for example a damaged PNG) as ich::Error naming the file.
  bool next(Batch* batch);

 private:
  struct Sample {
    uint32_t slice;
    int x0, y0;
  };
  std::vector<Sample> epoch_samples(int epoch) const;
  // This shard's positions in the epoch's sample order.
  std::vector<size_t> shard_positions(size_t epoch_size, int epoch) const;
  // samples[positions[first .. first + count)], augmented with the draws of their positions.
  void make_batch(const std::vector<Sample>& samples, const std::vector<size_t>& positions,
                  size_t first, size_t count, int epoch, Batch* batch) const;
  void produce(int epoch);
  void stop();

  std::shared_ptr<const SliceSource> source_;
  LoaderOptions options_;
  int whole_w_ = 0, whole_h_ = 0;
  std::vector<Sample> positives_, negatives_;
  size_t samples_per_epoch_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  bool stopping_ = false;
  bool finished_ = true;  // the producer made the last batch of the epoch
  bool started_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace ich::data
