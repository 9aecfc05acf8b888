// The checkpoints of a training run: what a checkpoint holds besides the tensors, written by
// rank 0 and loaded back, on every rank, to resume.
//
// Resuming is exact: the batches of epoch e and every augmentation draw are functions of
// (seed, e, i) (data/loader.h), and a checkpoint holds the weights, BatchNorm statistics,
// Adam moments and step counts, the dropout generator (models/checkpoint.h), and in its
// metadata the epoch and the step within the epoch and the running sums of the epoch's
// training loss (RunState). A run stopped after any step and resumed ends with the same
// weights, bit for bit on the CPU backend, as a run that was never stopped.
//
// The metadata keys are a file format: every checkpoint ichseg train has written reads back
// (tests/cli/test_resume.cpp keeps the list). Besides RunState: "ichseg.config" (the
// TrainConfig's JSON), "data.wl", "data.ww", "train.patch" (for `ichseg predict` on the
// checkpoint alone), "train.loader_seed", and the layout of the job (JobLayout).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "apps/run_folder.h"
#include "apps/train_config.h"
#include "engine/metrics.h"
#include "engine/optim.h"
#include "models/unet.h"

namespace ich {
class ProcessGroup;
}

namespace ich::app {

// Training position and running sums.
struct RunState {
  int epochs_done = 0;        // complete epochs (trained and validated)
  int64_t step_in_epoch = 0;  // steps done in epoch epochs_done + 1
  int64_t global_step = 0;
  double best_dice = -1.0;
  int best_epoch = 0;
  // sums over the steps done so far in the current epoch
  double loss_sum = 0.0;  // loss * images
  int64_t images = 0;
  ConfusionCounts counts;

  // Back to the start of epoch epochs_done + 1: no step done, no sums.
  void restart_epoch();
};

// The job a run is trained by; resuming needs the same.
struct JobLayout {
  int shards = 1;  // loaders of the epoch: ranks x --accumulate (sync), workers (async)
  int ranks = 1;
  int64_t steps_per_epoch = 0;  // per shard
};

// %.17g: the text strtod reads back as the same double.
std::string lossless_text(double v);

class Checkpointer {
 public:
  // writer: this process writes the checkpoints (rank 0).
  Checkpointer(const RunFolder& folder, const TrainConfig& config, JobLayout job, bool writer)
      : folder_(folder), config_(config), job_(job), writer_(writer) {}

  // checkpoints/last.safetensors, and best.safetensors first when `best` (writer only; a
  // no-op elsewhere).
  void save(Unet& net, const Adam& adam, const RunState& state, bool best = false) const;

  // Loads the last checkpoint into net and adam on every rank of comm (rank 0 reads the file
  // and sends its bytes), checks that it was written by a job of the same layout, and returns
  // where the run stands.
  RunState resume(Unet& net, Adam& adam, ProcessGroup* comm) const;

  std::map<std::string, std::string> metadata(const RunState& state) const;
  // The RunState of a checkpoint's metadata; `path` names the file in errors.
  static RunState state_of(const std::map<std::string, std::string>& metadata,
                           const std::string& path);

 private:
  void check_same_job(const std::map<std::string, std::string>& saved) const;

  const RunFolder& folder_;
  const TrainConfig& config_;
  JobLayout job_;
  bool writer_;
};

}  // namespace ich::app
