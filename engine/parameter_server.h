// Asynchronous data-parallel training, as the distributed-training paper's parameter server:
// rank 0 is a parameter server that owns the weights and Adam; ranks 1..N-1 are workers that
// push gradients and pull fresh weights without waiting for each other. Over a ProcessGroup
// (engine/process_group.h); the synchronous alternative is engine/data_parallel.h.
// docs/DISTRIBUTED.md has the launch lines and the semantics.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "engine/nn.h"
#include "engine/optim.h"
#include "engine/process_group.h"

namespace ich {

// Protocol: a worker computes gradients on weights of version v and pushes them (with v
// and its BatchNorm buffers) to rank 0; the server computes the staleness s = V - v, where
// V is its current version (the number of updates applied so far). With a staleness bound
// S >= 0 and s > S the gradient is rejected; otherwise Adam applies it at once and V
// grows by one, and the worker's buffers become the server's. Either way the server
// answers with its current weights and version, and the worker continues from them (after
// a rejection it recomputes the same batch on the fresh weights). Workers never wait for
// each other, only for the server's answer to their own push.

// A few numbers a worker sends along with its gradients for the server's bookkeeping (the
// trainer: the step's loss sum, images and confusion counts); the server hands those of an
// applied push to on_update. Doubles, so counts stay exact far beyond float's 2^24.
constexpr size_t kPushStatsWords = 6;
using PushStats = std::array<double, kPushStatsWords>;

struct AsyncStats {
  int64_t updates = 0;   // gradients applied
  int64_t rejected = 0;  // gradients older than the staleness bound
  int64_t max_staleness = 0;
  double mean_staleness = 0.0;  // over applied gradients
};

class ParameterServer {
 public:
  // staleness_bound < 0: no bound.
  ParameterServer(Module& model, Adam& adam, ProcessGroup& group, int64_t staleness_bound = -1);

  // Serves pushes until every worker has called AsyncWorker::finish(). on_update(version,
  // stats) runs after each applied update (logging, checkpoints, the next lr), with the
  // PushStats the worker sent with that gradient.
  AsyncStats serve(
      const std::function<void(int64_t version, const PushStats& stats)>& on_update = {});
  int64_t version() const { return version_; }

 private:
  Module& model_;
  Adam& adam_;
  ProcessGroup& group_;
  int64_t staleness_bound_;
  int64_t version_ = 0;
};

class AsyncWorker {
 public:
  AsyncWorker(Module& model, ProcessGroup& group);

  // Sends this rank's parameter grads and buffers, then waits for the server's weights
  // and loads them. Returns true when the server applied the gradient, false when it
  // rejected it as too stale (the weights are fresh now: recompute the same batch).
  bool push_and_pull(const PushStats& stats = {});
  // Tells the server this worker has no more gradients.
  void finish();
  int64_t version() const { return version_; }

 private:
  Module& model_;
  ProcessGroup& group_;
  int64_t version_ = 0;
};

}  // namespace ich
