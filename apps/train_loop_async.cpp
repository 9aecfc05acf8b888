// Asynchronous data parallelism (engine/parameter_server.h): rank 0 a parameter server that
// applies the workers' gradients as they arrive, ranks 1..N-1 workers that push the gradient
// of every batch and pull fresh weights without waiting for each other.
#include <algorithm>
#include <sstream>

#include "apps/stop_signal.h"
#include "apps/train_loop.h"
#include "engine/parameter_server.h"
#include "engine/process_group.h"

namespace ich::app {

namespace {

// An epoch ends after updates_per_epoch applied gradients. A run interrupted mid-epoch
// restarts that epoch (docs/DISTRIBUTED.md): the checkpoint then keeps the weights but not
// the position.
class ParameterServerLoop : public TrainLoop {
 public:
  using TrainLoop::TrainLoop;

  void run(TrainResult* result) override {
    RunState& state = run_.state;
    Adam& adam = *run_.adam;
    state.restart_epoch();
    ParameterServer server(*run_.net, adam, *run_.comm, config_.staleness);
    int epoch = state.epochs_done + 1;
    float lr = run_.schedule.at(state.global_step);
    adam.set_lr(lr);
    auto step_start = Clock::now();
    const AsyncStats stats = server.serve([&](int64_t, const PushStats& s) {
      add_step(s.data());
      show_step(epoch, std::chrono::duration<double>(Clock::now() - step_start).count());
      if (state.step_in_epoch == run_.updates_per_epoch && epoch <= config_.epochs) {
        end_epoch(epoch, lr, nullptr);
        ++epoch;
      }
      lr = run_.schedule.at(state.global_step);
      adam.set_lr(lr);
      step_start = Clock::now();
    });
    std::ostringstream os;
    os << "async: " << stats.updates << " updates, " << stats.rejected
       << " rejected as too stale, staleness mean " << stats.mean_staleness << " max "
       << stats.max_staleness;
    run_.say(os.str());
    if (state.epochs_done < config_.epochs) {
      RunState restart = state;
      restart.restart_epoch();
      run_.checkpointer->save(*run_.net, adam, restart);
      result->stopped_early = true;
      result->stop_signal = stop_signal_received();
      run_.say("stopped in epoch " + std::to_string(state.epochs_done + 1) + "; checkpoint " +
               run_.folder.last_checkpoint().string() + " (resuming restarts that epoch)");
    }
  }
};

// Its shard of every epoch, one push per batch; a gradient the server rejects as too stale
// is computed again, on the same batch, from the fresh weights.
class AsyncWorkerLoop : public TrainLoop {
 public:
  using TrainLoop::TrainLoop;

  void run(TrainResult* result) override {
    AsyncWorker worker(*run_.net, *run_.comm);
    run_.net->train();
    data::BatchLoader& loader = *run_.loaders[0];
    data::Batch batch;
    std::vector<float> p;
    int64_t local_step = 0;
    bool stop = false;
    for (int epoch = run_.state.epochs_done + 1; epoch <= config_.epochs && !stop; ++epoch) {
      loader.start_epoch(epoch - 1);
      while (loader.next(&batch)) {
        failure_hooks(++local_step);
        PushStats s{};
        do {
          run_.adam->zero_grad();
          const StepSums b = forward_backward(batch, epoch, run_.adam->lr(), &p);
          std::copy(b.begin(), b.end(), s.begin());
        } while (!worker.push_and_pull(s));
        if (stop_signal_received()) {
          stop = true;
          result->stop_signal = stop_signal_received();
          result->stopped_early = true;
          break;
        }
      }
    }
    worker.finish();
  }
};

}  // namespace

std::unique_ptr<TrainLoop> make_parameter_server_loop(TrainRun& run) {
  return std::make_unique<ParameterServerLoop>(run);
}

std::unique_ptr<TrainLoop> make_async_worker_loop(TrainRun& run) {
  return std::make_unique<AsyncWorkerLoop>(run);
}

}  // namespace ich::app
