// The distributed sampler's shard rule (data/sampler.h): disjoint shards of equal length, the
// same on every rank, a new permutation each epoch, and the drop and pad tail rules.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <vector>

#include "core/error.h"
#include "data/sampler.h"

using ich::Error;
using ich::data::DistributedSampler;

TEST_CASE("sampler: shards are disjoint, equal in length and the same on every rank", "[sampler]") {
  const int64_t n = 10;
  const int world = 3;
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < world; ++rank) {
    const DistributedSampler sampler(n, rank, world, 42);
    CHECK(sampler.samples_per_rank() == 3);  // drop: floor(10 / 3)
    const std::vector<int64_t> mine = sampler.indices(0);
    REQUIRE(mine.size() == 3);
    // Rank r takes positions r, r + world, ... of the common epoch order.
    const std::vector<int64_t> order = DistributedSampler(n, 0, world, 42).epoch_order(0);
    for (size_t k = 0; k < mine.size(); ++k) CHECK(mine[k] == order[rank + k * world]);
    seen.insert(mine.begin(), mine.end());
  }
  CHECK(seen.size() == 9);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 9);  // no sample twice

  const DistributedSampler a(n, 1, world, 42), b(n, 1, world, 42), c(n, 1, world, 43);
  CHECK(a.indices(5) == b.indices(5));          // same (seed, epoch): same shard on every run
  CHECK(a.indices(0) != a.indices(1));          // a new permutation each epoch
  CHECK(a.epoch_order(0) != c.epoch_order(0));  // another seed, another order
  std::vector<int64_t> sorted = a.epoch_order(3);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < n; ++i) CHECK(sorted[size_t(i)] == i);  // a permutation

  // pad: every sample is seen; the first n mod world... positions repeat.
  std::multiset<int64_t> padded;
  for (int rank = 0; rank < world; ++rank) {
    const DistributedSampler sampler(n, rank, world, 42, true, DistributedSampler::Tail::pad);
    CHECK(sampler.samples_per_rank() == 4);
    for (int64_t i : sampler.indices(2)) padded.insert(i);
  }
  CHECK(padded.size() == 12);
  CHECK(std::set<int64_t>(padded.begin(), padded.end()).size() == 10);

  const DistributedSampler in_order(n, 2, world, 42, false);
  CHECK(in_order.indices(0) == std::vector<int64_t>{2, 5, 8});
  CHECK_THROWS_AS(DistributedSampler(2, 0, 3, 1), Error);
  CHECK_THROWS_AS(DistributedSampler(10, 3, 3, 1), Error);
}
