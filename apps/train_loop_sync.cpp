// One process, or synchronous data parallelism: every rank takes the same steps, each on its
// `micro` shards; the gradients of the micro-batches are averaged, then over the ranks
// (bucketed all-reduce), and every rank applies the same Adam step.
#include <csignal>
#include <sstream>

#include "apps/stop_signal.h"
#include "apps/train_loop.h"
#include "engine/autograd.h"
#include "engine/data_parallel.h"
#include "engine/process_group.h"

namespace ich::app {

namespace {

class SyncLoop : public TrainLoop {
 public:
  explicit SyncLoop(TrainRun& run) : TrainLoop(run) {
    if (run.job.world > 1) bucketer_ = std::make_unique<GradientBucketer>(run.net->parameters());
  }

  void run(TrainResult* result) override {
    for (int epoch = run_.state.epochs_done + 1; epoch <= config_.epochs; ++epoch) {
      start_epoch_clock();
      float lr = run_.adam->lr();
      if (!train_epoch(epoch, &lr, result)) return;
      // Rank 0's BatchNorm running statistics are the ones saved; every rank validates with
      // them, each its share of the validation slices.
      if (run_.comm) broadcast_parameters(*run_.net, *run_.comm);
      end_epoch(epoch, lr, run_.comm);
    }
  }

 private:
  // The steps of `epoch` from where the run stands; false when the run stopped (a signal on
  // any rank, or the --stop-at-step hook) after a step, with its checkpoint written.
  bool train_epoch(int epoch, float* lr, TrainResult* result) {
    const int micro = run_.job.micro;
    std::vector<data::Batch> batches(static_cast<size_t>(micro));
    for (int m = 0; m < micro; ++m) {
      run_.loaders[size_t(m)]->start_epoch(epoch - 1);
      for (int64_t k = 0; k < run_.state.step_in_epoch; ++k)
        run_.loaders[size_t(m)]->next(&batches[size_t(m)]);  // done before the stop
    }
    run_.net->train();
    while (true) {
      const auto step_start = Clock::now();
      bool more = true;
      for (int m = 0; m < micro; ++m)
        more = run_.loaders[size_t(m)]->next(&batches[size_t(m)]) && more;
      if (!more) return true;
      const bool stop = step(epoch, batches, lr);
      show_step(epoch, std::chrono::duration<double>(Clock::now() - step_start).count());
      if (stop) {
        stopped(epoch, result);
        return false;
      }
    }
  }

  // One optimisation step on `batches`; true when any rank asks to stop after it.
  bool step(int epoch, const std::vector<data::Batch>& batches, float* lr) {
    const int micro = run_.job.micro;
    Adam& adam = *run_.adam;
    failure_hooks(run_.state.global_step + 1);
    *lr = run_.schedule.at(run_.state.global_step);
    adam.set_lr(*lr);
    adam.zero_grad();
    // loss sum, images, tp, fp, fn, tn, stop requests: summed over the ranks
    double s[7] = {0, 0, 0, 0, 0, 0, 0};
    std::vector<float> p;
    for (int m = 0; m < micro; ++m) {
      const StepSums b = forward_backward(batches[size_t(m)], epoch, *lr, &p);
      for (size_t k = 0; k < b.size(); ++k) s[k] += b[k];
    }
    if (micro > 1) {
      NoGradGuard no_grad;
      for (Tensor param : run_.net->parameters())
        if (param.grad().defined()) param.set_grad(scale(param.grad(), 1.0f / float(micro)));
    }
    if (bucketer_) bucketer_->allreduce_average(*run_.comm);
    adam.step();
    hook_ =
        run_.options.stop_at_step > 0 && run_.state.global_step + 1 >= run_.options.stop_at_step;
    s[6] = stop_signal_received() || hook_ ? 1.0 : 0.0;
    if (run_.comm) run_.comm->allreduce_sum(s, 7);
    add_step(s);
    return s[6] > 0;
  }

  void stopped(int epoch, TrainResult* result) {
    run_.checkpointer->save(*run_.net, *run_.adam, run_.state);
    const int signal = stop_signal_received();
    result->stop_signal = signal ? signal : (hook_ ? 0 : SIGINT);
    result->stopped_early = true;
    std::ostringstream os;
    os << "stopped "
       << (hook_ ? "at step " + std::to_string(run_.state.global_step) + " (--stop-at-step)"
                 : std::string(result->stop_signal == SIGTERM ? "by SIGTERM" : "by SIGINT"))
       << " in epoch " << epoch << " after step " << run_.state.step_in_epoch << " of "
       << run_.steps_per_epoch << "; checkpoint " << run_.folder.last_checkpoint().string()
       << "; continue with: "
       << (run_.job.world > 1 ? "mpirun -np " + std::to_string(run_.job.world) + " " : "")
       << "ichseg train --out " << run_.options.out_dir << " --resume";
    run_.say(os.str());
  }

  std::unique_ptr<GradientBucketer> bucketer_;
  bool hook_ = false;  // the --stop-at-step hook asked this process to stop
};

}  // namespace

std::unique_ptr<TrainLoop> make_sync_loop(TrainRun& run) {
  return std::make_unique<SyncLoop>(run);
}

}  // namespace ich::app
