// `ichseg train`: trains the U-Net into a run folder (apps/run_folder.h has its layout).
//
// The pieces: the settings (apps/train_config.h), the run folder and its checkpoints, which
// make a stopped run resume exactly (apps/run_folder.h, apps/checkpointer.h), the loop of
// each mode, one process / synchronous data parallelism / the asynchronous parameter server
// and its workers (apps/train_loop.h), and the validation at the end of every epoch
// (apps/train_validation.h).
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
