#include "data/sampler.h"

#include <utility>

#include "core/error.h"
#include "core/philox.h"

namespace ich::data {

DistributedSampler::DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed,
                                       bool shuffle, Tail tail)
    : n_(dataset_size), rank_(rank), world_(world), seed_(seed), shuffle_(shuffle), tail_(tail) {
  ICH_CHECK(world >= 1 && rank >= 0 && rank < world,
            "rank " << rank << " is not a rank of a world of " << world);
  ICH_CHECK(dataset_size >= world, "a dataset of " << dataset_size
                                                   << " samples cannot be shared by " << world
                                                   << " ranks (each needs at least one)");
  per_rank_ = tail == Tail::drop ? n_ / world : (n_ + world - 1) / world;
}

std::vector<int64_t> DistributedSampler::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) order[size_t(i)] = i;
  if (!shuffle_) return order;
  // Fisher-Yates from the back; draw i uses Philox index (epoch, i) under the run's seed.
  const uint64_t base = uint64_t(epoch) << 32;
  for (int64_t i = n_ - 1; i > 0; --i) {
    const Philox4 r = philox4x32_10(base + uint64_t(i), seed_);
    const uint64_t wide = (uint64_t(r.v[0]) << 32) | r.v[1];
    const int64_t j = int64_t(wide % uint64_t(i + 1));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
  const std::vector<int64_t> order = epoch_order(epoch);
  std::vector<int64_t> mine;
  mine.reserve(size_t(per_rank_));
  for (int64_t k = 0; k < per_rank_; ++k) {
    const int64_t position = rank_ + k * world_;  // < n_ for drop, may wrap for pad
    mine.push_back(order[size_t(position % n_)]);
  }
  return mine;
}

}  // namespace ich::data
