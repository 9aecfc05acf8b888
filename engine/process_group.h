// ProcessGroup: the processes of a data-parallel job as the ops see them, the one
// collective synchronised BatchNorm needs (an all-gather of a few doubles per rank).
//
// An interface, so that engine/ops_norm.cpp and engine/nn.cpp do not depend on MPI: the
// Communicator of engine/distributed.h implements it over MPI (and as a world of one
// without MPI); a test can implement it in memory.
#pragma once

#include <cstdint>

namespace ich {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank passes `count` doubles; `all` (size() * count) receives rank 0's, then rank
  // 1's, ..., identical on every rank. Collective: every rank calls it, in the same order.
  virtual void allgather(const double* mine, int64_t count, double* all) = 0;
};

}  // namespace ich
