// `ichseg train`: the training loop of the U-Net, and the run folder it fills.
//
// RUN_DIR (read by `ichseg report`, `ichseg eval --run`):
//   config.json                      the resolved TrainConfig (apps/train_config.h) + "info"
//   log.csv epoch,train_loss,val_loss,val_dice,val_jaccard,lr,seconds,images_per_s
//   samples/epoch_NNN_<slice>.png    fixed validation slices: image | truth | prediction
//   checkpoints/last.safetensors     after every epoch, and on SIGINT/SIGTERM mid-epoch
//   checkpoints/best.safetensors     the epoch with the highest validation Dice so far
//
// Validation scores every slice of the validation split on whole slices (by sliding window
// when the run trains on patches), as `ichseg eval` does: val_dice and val_jaccard are the
// means over slices, with the empty-truth rule of apps/evaluation.h.
//
// Resuming is exact: the batches of epoch e and every augmentation draw are functions of
// (seed, e, i) (data/loader.h), and a checkpoint holds the weights, BatchNorm statistics,
// Adam moments and step counts, the dropout generator, the epoch and the step within the
// epoch, and the running sums of the epoch's training loss. A run stopped after any step
// and resumed ends with the same weights, bit for bit on the CPU backend, as a run that
// was never stopped.
#pragma once

#include <cstdint>
#include <string>

#include "apps/train_config.h"

namespace ich {
class ProcessGroup;
}

namespace ich::app {

struct TrainOptions {
  std::string out_dir;
  bool resume = false;  // continue out_dir from checkpoints/last.safetensors
  // Test hook: stop as on SIGINT once this many optimisation steps have been done in the
  // whole run (0: never). Lets a test interrupt a run at an exact step.
  int64_t stop_at_step = 0;
  std::string command_line;  // recorded in config.json
  // The MPI world of a data-parallel run (config.distributed sync or async); null: one
  // process. Rank 0 alone writes the run folder.
  ProcessGroup* comm = nullptr;
  // Test hook: the last rank kills itself (SIGKILL) before this step of the run (its own
  // step count in async mode); 0: never.
  int64_t kill_at_step = 0;
  // Test hook: the last rank sleeps forever before this step of the run (its own step count
  // in async mode), as a rank that hangs; 0: never.
  int64_t hang_at_step = 0;
};

struct TrainResult {
  int epochs_done = 0;
  int64_t global_step = 0;
  double best_dice = -1.0;
  int best_epoch = 0;
  int stop_signal = 0;         // SIGINT or SIGTERM when a signal stopped the run
  bool stopped_early = false;  // by a signal or the stop_at_step hook
};

// Trains config (already resolved and validated) into options.out_dir. Throws ich::Error on
// bad input and when the loss becomes NaN or infinite (naming the epoch and the step).
TrainResult run_training(const TrainConfig& config, const TrainOptions& options);

}  // namespace ich::app
