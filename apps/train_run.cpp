// TrainRun: the setup of a training run, in the order its checks must come (a mistake in the
// job or the folder before any data is read; the run folder appears only once the data is
// readable).
#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "apps/evaluation.h"
#include "apps/train_loop.h"
#include "core/error.h"
#include "engine/data_parallel.h"
#include "engine/process_group.h"
#include "engine/runtime_info.h"

namespace ich::app {

namespace {

data::LoaderOptions loader_options(const TrainConfig& config, int shards) {
  data::LoaderOptions lo;
  lo.batch_size = config.batch;
  lo.patch = config.patch;
  lo.stride = config.stride;
  lo.negatives_per_positive = config.negatives_per_positive;
  lo.seed = config.seed;
  lo.shards = shards;
  if (config.augment) {
    lo.augment.flip_horizontal = 0.5;
    lo.augment.rotate_degrees = 10.0;
    lo.augment.elastic_sigma = 4.0;
    lo.augment.noise_std = 0.02;
  }
  return lo;
}

void warn_shared_patients(const data::SliceSource& train, const data::SliceSource& val,
                          const TrainConfig& config) {
  std::set<int> train_patients, shared;
  for (size_t i = 0; i < train.size(); ++i) train_patients.insert(train.id(i).patient);
  for (size_t i = 0; i < val.size(); ++i) {
    const int p = val.id(i).patient;
    if (p >= 0 && train_patients.count(p)) shared.insert(p);
  }
  if (!shared.empty())
    std::fprintf(stderr,
                 "ichseg train: warning: %zu patient(s) are in both the '%s' and the '%s' "
                 "split: the validation scores are not independent\n",
                 shared.size(), config.train_split.c_str(), config.val_split.c_str());
}

const RunFolder& checked_folder(const RunFolder& folder, const TrainOptions& options,
                                const JobTopology& job) {
  // Only rank 0 looks at (and writes) the run folder.
  if (job.root() && options.resume) folder.check_can_resume();
  if (job.root() && !options.resume) folder.check_can_start();
  return folder;
}

}  // namespace

JobTopology JobTopology::of(const TrainConfig& config, const TrainOptions& options) {
  JobTopology t;
  t.rank = options.comm ? options.comm->rank() : 0;
  t.world = options.comm ? options.comm->size() : 1;
  t.async = config.distributed == "async";
  ICH_CHECK(config.distributed != "none" || t.world == 1,
            "this process is one of " << t.world
                                      << " started by mpirun, but --distributed is none: pass "
                                         "--distributed sync or async, or run one process");
  ICH_CHECK(!t.async || t.world >= 2,
            "--distributed async needs rank 0 as the parameter server and at least one worker: "
            "start it with mpirun -np 2 or more");
  ICH_CHECK(!t.async || options.stop_at_step == 0,
            "the --stop-at-step test hook counts synchronous steps; it does not apply to "
            "--distributed async");
  t.shards = t.async ? t.world - 1 : t.world * config.accumulate;
  t.micro = t.async ? 1 : config.accumulate;
  t.first_shard = t.async ? std::max(0, t.rank - 1) : t.rank * config.accumulate;
  return t;
}

TrainRun::TrainRun(const TrainConfig& config, const TrainOptions& options)
    : config(config),
      options(options),
      comm(options.comm),
      job(JobTopology::of(config, options)),
      folder(checked_folder(RunFolder(options.out_dir), options, job)),
      device(Device::parse(config.device)) {
  open_data();
  build_model();
  resume_or_start();
  join_ranks();
  progress = std::make_unique<Progress>(updates_per_epoch, !launched_by_mpirun());
  say(description());
  if (state.epochs_done >= config.epochs) {
    say("nothing to do: the run has finished its " + std::to_string(state.epochs_done) +
        " epochs (pass --epochs N to train further)");
  }
  display_slices = pick_display_slices(*val_slices, config.val_samples);
}

void TrainRun::say(const std::string& text) {
  if (job.root()) progress->line(text);
}

void TrainRun::open_data() {
  train_slices = open_slices(config, config.train_split, config.only_hemorrhage);
  val_slices = open_slices(config, config.val_split, config.only_hemorrhage);
  if (job.root()) warn_shared_patients(*train_slices, *val_slices, config);
  data::LoaderOptions lo = loader_options(config, job.shards);
  for (int m = 0; m < job.micro; ++m) {
    lo.shard = job.first_shard + m;
    loaders.push_back(std::make_unique<data::BatchLoader>(train_slices, lo));
  }
  // Every shard takes as many steps.
  steps_per_epoch = static_cast<int64_t>(loaders[0]->batches_per_epoch());
  updates_per_epoch = job.async ? steps_per_epoch * (job.world - 1) : steps_per_epoch;
  samples_per_epoch = loaders[0]->samples_per_epoch() * size_t(job.shards);
  // Only now, with the data readable, does the run folder appear.
  if (job.root()) folder.create();
}

void TrainRun::build_model() {
  net = std::make_unique<Unet>(config.unet(), config.seed);
  net->to(device);
  AdamOptions adam_options;
  adam_options.lr = static_cast<float>(config.lr);
  adam_options.weight_decay = static_cast<float>(config.weight_decay);
  adam = std::make_unique<Adam>(net->named_parameters(), adam_options);
  schedule.kind = LrSchedule::parse_kind(config.lr_schedule);
  schedule.base_lr = static_cast<float>(config.lr);
  schedule.total_steps = int64_t(config.epochs) * updates_per_epoch;
  JobLayout layout;
  layout.shards = job.shards;
  layout.ranks = job.world;
  layout.steps_per_epoch = steps_per_epoch;
  checkpointer = std::make_unique<Checkpointer>(folder, config, layout, job.root());
}

void TrainRun::resume_or_start() {
  if (options.resume) {
    state = checkpointer->resume(*net, *adam, comm);
    if (job.root()) folder.trim_log(state.epochs_done);
    return;
  }
  if (!job.root()) return;
  const nlohmann::json info = {
      {"model", config.unet().str()},
      {"parameters", net->parameter_count()},
      {"data_kind", data_kind(config.data) == DataKind::prepared ? "prepared" : "ctich"},
      {"train_slices", train_slices->size()},
      {"val_slices", val_slices->size()},
      {"samples_per_epoch", samples_per_epoch},
      {"steps_per_epoch", steps_per_epoch},
      {"ranks", job.world},
      {"global_batch", job.async ? config.batch : config.batch * job.micro * job.world},
      {"openblas_core", cpu_blas_kernels()},
      {"out", options.out_dir},
      {"command", options.command_line}};
  folder.write_config(config, info);
  folder.start_log();
}

void TrainRun::join_ranks() {
  // Every rank starts from rank 0's weights, BatchNorm statistics (and, resuming, Adam state
  // and position: all ranks loaded the same checkpoint). Dropout draws differ per rank.
  if (comm) broadcast_parameters(*net, *comm);
  // Synchronised BatchNorm: every training forward exchanges the layers' statistics over
  // the ranks, so they stay identical and the effective BatchNorm batch is the global one.
  // A world of one rank has nothing to exchange.
  if (config.sync_bn && comm && job.world > 1) set_sync_batch_norm(*net, comm);
  net->dropout_generator().seed += uint64_t(job.rank);
}

std::string TrainRun::description() const {
  std::ostringstream os;
  const int world = job.world, micro = job.micro;
  os << "ichseg train: " << config.unet().str() << ", " << net->parameter_count()
     << " parameters, on " << device.str();
  if (job.async)
    os << " x " << world - 1 << " async workers (rank 0: parameter server)";
  else if (world > 1)
    os << " x " << world << " ranks (sync" << (config.sync_bn ? ", synchronised BatchNorm" : "")
       << ")";
  os << "; " << train_slices->size() << " training slices (" << samples_per_epoch << " samples, "
     << updates_per_epoch << " steps of " << config.batch;
  if (!job.async && micro * world > 1)
    os << " x " << micro * world << " = " << config.batch * micro * world;
  os << " per epoch), " << val_slices->size() << " validation slices; loss " << config.loss
     << ", lr " << config.lr;
  if (options.resume)
    os << "; resuming after epoch " << state.epochs_done << " step " << state.step_in_epoch;
  return os.str();
}

}  // namespace ich::app
