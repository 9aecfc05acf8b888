// The training loop of `ichseg train`, one implementation per mode, and the run they share.
//
//   SyncLoop             one process, or synchronous data parallelism: every rank takes the
//                        same steps on its shards, gradients averaged before each Adam step
//                        (train_loop_sync.cpp)
//   ParameterServerLoop  async, rank 0: applies the workers' gradients as they arrive; an
//                        epoch ends after updates_per_epoch of them (train_loop_async.cpp)
//   AsyncWorkerLoop      async, ranks 1..N-1: its shard of every epoch, one push per batch
//                        (train_loop_async.cpp)
//
// TrainRun is everything a loop works on, set up once by its constructor (run folder checks,
// data, loaders, model, optimiser, and the checkpoint to resume from or a fresh run folder);
// TrainLoop holds the pieces every mode uses: a batch's forward and backward, the step's
// bookkeeping and progress line, and the end of an epoch (validation, log row, checkpoints).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/checkpointer.h"
#include "apps/run_folder.h"
#include "apps/train_config.h"
#include "apps/train_progress.h"
#include "apps/trainer.h"
#include "data/loader.h"
#include "engine/optim.h"
#include "models/unet.h"

namespace ich::app {

// Who this process is in the job, and which training shards it reads.
struct JobTopology {
  int rank = 0, world = 1;
  bool async = false;
  // Synchronous: world x accumulate shards, this rank's are rank*accumulate + m. Async: the
  // workers' world - 1 shards; rank 0 (the server) reads no training batches.
  int shards = 1;
  int micro = 1;  // micro-batches (loaders) of this process per step
  int first_shard = 0;

  bool root() const { return rank == 0; }
  // Checks the MPI world against config.distributed (one line per mistake).
  static JobTopology of(const TrainConfig& config, const TrainOptions& options);
};

struct TrainRun {
  TrainRun(const TrainConfig& config, const TrainOptions& options);

  // A line of the run's output, printed by rank 0 alone.
  void say(const std::string& text);

  const TrainConfig& config;
  const TrainOptions& options;
  ProcessGroup* const comm;
  const JobTopology job;
  const RunFolder folder;
  const Device device;
  std::shared_ptr<const data::SliceSource> train_slices, val_slices;
  std::vector<std::unique_ptr<data::BatchLoader>> loaders;  // one per micro-batch
  int64_t steps_per_epoch = 0;                              // per rank (and per worker in async)
  int64_t updates_per_epoch = 0;  // optimisation steps: sync one per step, async one per push
  size_t samples_per_epoch = 0;
  std::unique_ptr<Unet> net;
  std::unique_ptr<Adam> adam;
  LrSchedule schedule;
  std::unique_ptr<Checkpointer> checkpointer;
  RunState state;
  std::unique_ptr<Progress> progress;
  std::vector<size_t> display_slices;  // validation slices saved as PNG each epoch

 private:
  void open_data();
  void build_model();
  void resume_or_start();
  void join_ranks();
  std::string description() const;
};

// A step's sums, in the order they travel between ranks (all-reduce, PushStats): loss x
// images, images, tp, fp, fn, tn.
using StepSums = std::array<double, 6>;

class TrainLoop {
 public:
  explicit TrainLoop(TrainRun& run);
  virtual ~TrainLoop() = default;
  TrainLoop(const TrainLoop&) = delete;
  TrainLoop& operator=(const TrainLoop&) = delete;

  // Trains from where run.state stands to config.epochs, or until stopped; says in result
  // whether (and by which signal) it stopped early.
  virtual void run(TrainResult* result) = 0;

 protected:
  using Clock = std::chrono::steady_clock;

  // Forward and backward of one batch (grads accumulate); the batch's sums, its
  // probabilities in *probs. Throws when the loss is not finite, naming the epoch and step.
  StepSums forward_backward(const data::Batch& batch, int epoch, float lr,
                            std::vector<float>* probs);
  // Test hooks: the last rank dies as from `kill -9`, or stops answering as a rank stuck in
  // a loop or a driver call, before this step of the run.
  void failure_hooks(int64_t step) const;
  // A step done: its sums (summed over the ranks) into the run's state.
  void add_step(const double* sums);
  // The progress line after a step that took `seconds`.
  void show_step(int epoch, double seconds);
  // The end of an epoch: validation (over validation_comm's ranks), the log row and the
  // checkpoints (rank 0 writes them).
  void end_epoch(int epoch, float lr, ProcessGroup* validation_comm);
  void start_epoch_clock() { epoch_start_ = Clock::now(); }

  TrainRun& run_;
  const TrainConfig& config_;

 private:
  int64_t steps_this_process_ = 0;
  double train_seconds_this_process_ = 0.0;
  double epoch_train_seconds_ = 0.0;
  int64_t epoch_images_ = 0;
  Clock::time_point epoch_start_ = Clock::now();
};

std::unique_ptr<TrainLoop> make_sync_loop(TrainRun& run);
std::unique_ptr<TrainLoop> make_parameter_server_loop(TrainRun& run);
std::unique_ptr<TrainLoop> make_async_worker_loop(TrainRun& run);

}  // namespace ich::app
