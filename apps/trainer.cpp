#include "apps/trainer.h"

#include <chrono>
#include <cstdio>

#include "apps/stop_signal.h"
#include "apps/train_loop.h"
#include "core/error.h"

namespace ich::app {

TrainResult run_training(const TrainConfig& config, const TrainOptions& options) {
  ICH_CHECK(!options.out_dir.empty(), "no run folder: pass --out RUN_DIR");
  TrainRun run(config, options);
  std::unique_ptr<TrainLoop> loop = !run.job.async   ? make_sync_loop(run)
                                    : run.job.root() ? make_parameter_server_loop(run)
                                                     : make_async_worker_loop(run);
  StopSignalGuard signal_guard;
  TrainResult result;
  const auto start = std::chrono::steady_clock::now();
  loop->run(&result);

  const RunState& state = run.state;
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (state.best_epoch > 0 && !result.stopped_early) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "done in %s: best val Dice %.4f at epoch %d; checkpoints in %s",
                  duration_text(total).c_str(), state.best_dice, state.best_epoch,
                  run.folder.checkpoints().string().c_str());
    run.say(text);
  }
  result.epochs_done = state.epochs_done;
  result.global_step = state.global_step;
  result.best_dice = state.best_dice;
  result.best_epoch = state.best_epoch;
  return result;
}

}  // namespace ich::app
