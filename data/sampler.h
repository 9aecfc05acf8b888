// The distributed sampler: which samples each rank of a data-parallel job takes in an epoch.
// A data rule (no communication: every rank computes every shard itself); the loaders cut
// their epochs with it (data/loader.h), and the data-parallel training of
// engine/data_parallel.h relies on its equal shard lengths.
#pragma once

#include <cstdint>
#include <vector>

namespace ich::data {

// Which dataset indices each rank takes in an epoch, as PyTorch's DistributedSampler: a
// permutation of 0..n-1 drawn from (seed, epoch), identical on every rank (no
// communication needed), cut into `world` shards by stride: rank r takes positions r,
// r + world, r + 2 world, ...
//
// Every rank must take the same number of steps, so the shards have equal length; the
// tail rule says how when n is not a multiple of world:
//   drop (default): the last n mod world positions of the permutation are left out of this
//        epoch, so no sample is seen twice in an epoch; the permutation changes every
//        epoch, so a different few are left out each time.
//   pad: the permutation is extended by its first positions (PyTorch's default), so every
//        sample is seen and up to world-1 samples are seen twice.
class DistributedSampler {
 public:
  enum class Tail { drop, pad };

  DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed, bool shuffle = true,
                     Tail tail = Tail::drop);

  int64_t samples_per_rank() const { return per_rank_; }
  // This rank's indices of `epoch`, in the order to visit them.
  std::vector<int64_t> indices(int64_t epoch) const;
  // The whole epoch's order (the same on every rank): a Fisher-Yates shuffle driven by
  // Philox numbers of (seed, epoch), or 0..n-1 without shuffle.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  int64_t n_;
  int rank_, world_;
  uint64_t seed_;
  bool shuffle_;
  Tail tail_;
  int64_t per_rank_;
};

}  // namespace ich::data
