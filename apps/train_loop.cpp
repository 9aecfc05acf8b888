// The pieces of a training step and of an epoch's end that every TrainLoop shares.
#include "apps/train_loop.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "apps/train_validation.h"
#include "core/error.h"
#include "engine/autograd.h"
#include "engine/metrics.h"
#include "engine/process_group.h"

namespace ich::app {

TrainLoop::TrainLoop(TrainRun& run) : run_(run), config_(run.config) {}

StepSums TrainLoop::forward_backward(const data::Batch& batch, int epoch, float lr,
                                     std::vector<float>* probs) {
  const Shape shape{batch.n, 1, batch.h, batch.w};
  const Tensor x = Tensor::from_host(batch.images, shape, run_.device);
  const Tensor y = Tensor::from_host(batch.masks, shape, run_.device);
  const Tensor prob = run_.net->forward(x);
  // The output is checked before the loss: BCE refuses NaN probabilities with a message
  // about sigmoids, which would hide that the weights diverged.
  *probs = prob.to_host();
  const bool finite_output =
      std::all_of(probs->begin(), probs->end(), [](float v) { return std::isfinite(v); });
  Tensor loss;
  if (finite_output) loss = training_loss(config_.loss, prob, y);
  const float value = finite_output ? loss.item() : NAN;
  const RunState& state = run_.state;
  const std::filesystem::path last = run_.folder.last_checkpoint();
  ICH_CHECK(std::isfinite(value),
            "the loss became NaN at epoch "
                << epoch << ", step " << state.step_in_epoch + 1 << " of " << run_.updates_per_epoch
                << " (step " << state.global_step + 1 << " of the run)"
                << (finite_output ? "" : ": the network's output is not finite")
                << "; training diverged: lower --lr (now " << lr << ") or check the data. "
                << (std::filesystem::exists(last) ? "The last good checkpoint is " + last.string()
                                                  : std::string("No checkpoint was written yet.")));
  loss.backward();
  const ConfusionCounts c = confusion_counts(probs->data(), batch.masks.data(), probs->size());
  return {double(value) * batch.n,
          double(batch.n),
          double(c.tp),
          double(c.fp),
          double(c.fn),
          double(c.tn)};
}

void TrainLoop::failure_hooks(int64_t step) const {
  const TrainOptions& o = run_.options;
  const int rank = run_.job.rank, last = run_.job.world - 1;
  if (o.kill_at_step > 0 && rank == last && step == o.kill_at_step) {
    std::fprintf(stderr, "rank %d: killing itself before step %lld (--kill-at-step)\n", rank,
                 static_cast<long long>(step));
    std::fflush(stderr);
    std::raise(SIGKILL);
  }
  if (o.hang_at_step > 0 && rank == last && step == o.hang_at_step) {
    std::fprintf(stderr, "rank %d: hanging before step %lld (--hang-at-step)\n", rank,
                 static_cast<long long>(step));
    std::fflush(stderr);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

void TrainLoop::add_step(const double* s) {
  RunState& state = run_.state;
  state.loss_sum += s[0];
  state.images += int64_t(s[1]);
  ConfusionCounts c;
  c.tp = int64_t(s[2]), c.fp = int64_t(s[3]), c.fn = int64_t(s[4]), c.tn = int64_t(s[5]);
  state.counts += c;
  epoch_images_ += int64_t(s[1]);
  ++state.step_in_epoch;
  ++state.global_step;
}

void TrainLoop::show_step(int epoch, double seconds) {
  ++steps_this_process_;
  epoch_train_seconds_ += seconds;
  train_seconds_this_process_ += seconds;
  const RunState& state = run_.state;
  const int64_t remaining = int64_t(config_.epochs) * run_.updates_per_epoch - state.global_step;
  if (run_.job.root())
    run_.progress->step(epoch, config_.epochs, state.step_in_epoch, run_.updates_per_epoch,
                        state.loss_sum / double(state.images),
                        segmentation_metrics(state.counts).dice,
                        epoch_images_ / std::max(epoch_train_seconds_, 1e-9),
                        remaining * train_seconds_this_process_ / double(steps_this_process_));
}

void TrainLoop::end_epoch(int epoch, float lr, ProcessGroup* validation_comm) {
  RunState& state = run_.state;
  const ValidationResult v =
      validate(*run_.net, run_.device, *run_.val_slices, config_, run_.display_slices,
               run_.folder.samples(), epoch, validation_comm);
  EpochRow row;
  row.epoch = epoch;
  row.seconds = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
  row.train_loss = state.images ? state.loss_sum / double(state.images) : NAN;
  row.images_per_s = epoch_images_ / std::max(epoch_train_seconds_, 1e-9);
  row.val_loss = v.loss, row.val_dice = v.dice, row.val_jaccard = v.jaccard, row.lr = lr;
  state.epochs_done = epoch;
  state.restart_epoch();
  const bool improved = v.dice > state.best_dice;
  if (improved) {
    state.best_dice = v.dice;
    state.best_epoch = epoch;
  }
  if (run_.job.root()) {
    run_.folder.append_log(row);
    run_.checkpointer->save(*run_.net, *run_.adam, state, improved);
    char text[512];
    std::snprintf(text, sizeof text,
                  "epoch %d/%d: train loss %.4f, val loss %.4f, val Dice %.4f, val Jaccard "
                  "%.4f, lr %.3g, %.1f s, %.1f img/s%s",
                  epoch, config_.epochs, row.train_loss, v.loss, v.dice, v.jaccard, double(lr),
                  row.seconds, row.images_per_s, improved ? " (best)" : "");
    run_.progress->line(text);
  }
  epoch_train_seconds_ = 0.0;
  epoch_images_ = 0;
  epoch_start_ = Clock::now();
}

}  // namespace ich::app
