#include "apps/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "apps/evaluation.h"
#include "apps/figures.h"
#include "apps/predictor.h"
#include "core/error.h"
#include "data/fileutil.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/data_parallel.h"
#include "engine/metrics.h"
#include "engine/optim.h"
#include "engine/parameter_server.h"
#include "engine/process_group.h"
#include "kernels/cpu/blas_select.h"
#include "models/checkpoint.h"

namespace fs = std::filesystem;

namespace ich::app {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kLogHeader =
    "epoch,train_loss,val_loss,val_dice,val_jaccard,lr,seconds,images_per_s";

// ---- signals: the first SIGINT/SIGTERM asks the loop to stop after the current step; a
// second one ends the process at once.
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal) std::_Exit(128 + sig);
  g_stop_signal = sig;
}

class StopSignalGuard {
 public:
  StopSignalGuard() {
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

Tensor training_loss(const std::string& loss, const Tensor& p, const Tensor& t) {
  if (loss == "dice") return soft_dice_loss(p, t);
  if (loss == "bce") return bce_loss(p, t);
  return dice_bce_loss(p, t);
}

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string duration_text(double seconds) {
  char buf[32];
  const long s = std::lround(std::max(0.0, seconds));
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

// Training position and running sums, as stored in a checkpoint's metadata.
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

  std::map<std::string, std::string> metadata(const TrainConfig& config,
                                              int64_t steps_per_epoch) const {
    return {{"ichseg.config", config_to_json(config).dump()},
            {"data.wl", exact(config.wl)},
            {"data.ww", exact(config.ww)},
            {"train.patch", std::to_string(config.patch)},
            {"train.loader_seed", std::to_string(config.seed)},
            {"train.steps_per_epoch", std::to_string(steps_per_epoch)},
            {"train.epochs_done", std::to_string(epochs_done)},
            {"train.step_in_epoch", std::to_string(step_in_epoch)},
            {"train.global_step", std::to_string(global_step)},
            {"train.best_dice", exact(best_dice)},
            {"train.best_epoch", std::to_string(best_epoch)},
            {"train.epoch_loss_sum", exact(loss_sum)},
            {"train.epoch_images", std::to_string(images)},
            {"train.epoch_tp", std::to_string(counts.tp)},
            {"train.epoch_fp", std::to_string(counts.fp)},
            {"train.epoch_fn", std::to_string(counts.fn)}};
  }

  static RunState from_metadata(const std::map<std::string, std::string>& m,
                                const std::string& path) {
    const auto text = [&](const char* key) -> const std::string& {
      const auto it = m.find(key);
      ICH_CHECK(it != m.end(),
                path << " has no '" << key << "' entry: it is not a checkpoint of ichseg train");
      return it->second;
    };
    const auto integer = [&](const char* key) {
      char* end = nullptr;
      const long long v = std::strtoll(text(key).c_str(), &end, 10);
      ICH_CHECK(*end == '\0',
                path << ": '" << key << "' = '" << text(key) << "' is not an integer");
      return static_cast<int64_t>(v);
    };
    const auto number = [&](const char* key) {
      char* end = nullptr;
      const double v = std::strtod(text(key).c_str(), &end);
      ICH_CHECK(*end == '\0', path << ": '" << key << "' = '" << text(key) << "' is not a number");
      return v;
    };
    RunState s;
    s.epochs_done = static_cast<int>(integer("train.epochs_done"));
    s.step_in_epoch = integer("train.step_in_epoch");
    s.global_step = integer("train.global_step");
    s.best_dice = number("train.best_dice");
    s.best_epoch = static_cast<int>(integer("train.best_epoch"));
    s.loss_sum = number("train.epoch_loss_sum");
    s.images = integer("train.epoch_images");
    s.counts.tp = integer("train.epoch_tp");
    s.counts.fp = integer("train.epoch_fp");
    s.counts.fn = integer("train.epoch_fn");
    return s;
  }
};

// One progress line, rewritten in place on a terminal; plain lines a few times per epoch
// otherwise (a log file should not fill with carriage returns).
class Progress {
 public:
  // may_rewrite false: plain lines even on a terminal (mpirun hands each rank a pty and
  // interleaves the ranks' lines, so carriage returns would only garble its output).
  Progress(int64_t steps_per_epoch, bool may_rewrite)
      : tty_(may_rewrite && ::isatty(STDOUT_FILENO) != 0),
        every_(std::max<int64_t>(1, steps_per_epoch / 4)) {}

  void step(int epoch, int epochs, int64_t step, int64_t steps, double loss, double dice,
            double images_per_s, double eta_seconds) {
    if (!tty_ && step % every_ != 0 && step != steps) return;
    char bar[24] = {};
    const int filled = static_cast<int>(20 * step / std::max<int64_t>(1, steps));
    for (int i = 0; i < 20; ++i) bar[i] = i < filled ? '#' : '.';
    std::printf("%sepoch %d/%d [%s] %lld/%lld loss %.4f dice %.4f %.1f img/s eta %s%s",
                tty_ ? "\r\033[K" : "", epoch, epochs, bar, static_cast<long long>(step),
                static_cast<long long>(steps), loss, dice, images_per_s,
                duration_text(eta_seconds).c_str(), tty_ ? "" : "\n");
    std::fflush(stdout);
  }

  void line(const std::string& text) {
    std::printf("%s%s\n", tty_ ? "\r\033[K" : "", text.c_str());
    std::fflush(stdout);
  }

 private:
  bool tty_;
  int64_t every_;
};

struct ValidationResult {
  double loss = 0.0, dice = 0.0, jaccard = 0.0;
  size_t slices = 0;
};

std::string stem(const std::string& name) {
  return fs::path(name).stem().string();
}

// Scores every slice of `source` in chunks of up to `batch` consecutive slices of one size.
// Data parallel (comm with N > 1 ranks): chunk c is scored by rank c mod N and the sums are
// all-reduced, so every rank returns the same result, equal (up to the order of the sums)
// to one process's; rank 0 also predicts the chunks holding the display slices and is the
// only one that writes their panels.
ValidationResult validate(Unet& net, const Device& device, const data::SliceSource& source,
                          const TrainConfig& config, const std::vector<size_t>& samples,
                          const fs::path& samples_dir, int epoch, ProcessGroup* comm) {
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->size() : 1;
  net.eval();
  InferenceOptions io;  // whole slices, also after patch training (the net is convolutional)
  io.batch = config.batch;
  // loss * slices, Dice sum, Jaccard sum, slices
  double sums[4] = {0, 0, 0, 0};
  data::Image8 image, mask;
  size_t i = 0;
  for (int64_t chunk = 0; i < source.size(); ++chunk) {
    // A chunk: up to `batch` consecutive slices of one size (the same cut on every rank).
    const size_t first = i;
    int h = 0, w = 0;
    std::vector<size_t> ids;
    while (i < source.size() && int(ids.size()) < config.batch) {
      source.load_mask(i, &mask);
      if (!ids.empty() && (mask.w != w || mask.h != h)) break;
      w = mask.w;
      h = mask.h;
      ids.push_back(i++);
    }
    const bool mine = chunk % world == rank;
    bool shows_sample = false;
    if (rank == 0)
      for (size_t id : ids) shows_sample |= std::binary_search(samples.begin(), samples.end(), id);
    if (!mine && !shows_sample) continue;
    std::vector<float> images, truths;  // (n, h, w)
    for (size_t k = first; k < i; ++k) {
      source.load(k, &image, &mask);
      ICH_CHECK(image.w == w && image.h == h, source.id(k).name << " is " << image.w << "x"
                                                                << image.h << " but its mask is "
                                                                << w << "x" << h);
      for (uint8_t v : image.pixels) images.push_back(v / 255.0f);
      for (uint8_t v : mask.pixels) truths.push_back(v ? 1.0f : 0.0f);
    }
    const int n = static_cast<int>(ids.size());
    const std::vector<float> probs = predict_images(net, device, images.data(), n, h, w, io);
    const size_t plane = size_t(h) * w;
    if (mine) {
      NoGradGuard no_grad;
      const Tensor p = Tensor::from_host(probs, {n, 1, h, w});
      const Tensor t = Tensor::from_host(truths, {n, 1, h, w});
      sums[0] += double(training_loss(config.loss, p, t).item()) * n;
      for (int k = 0; k < n; ++k) {
        const SegmentationMetrics m =
            segmentation_metrics(probs.data() + k * plane, truths.data() + k * plane, plane);
        sums[1] += m.dice;
        sums[2] += m.jaccard;
      }
      sums[3] += n;
    }
    if (!shows_sample) continue;
    for (int k = 0; k < n; ++k) {
      if (!std::binary_search(samples.begin(), samples.end(), ids[k])) continue;
      char name[64];
      std::snprintf(name, sizeof name, "epoch_%03d_", epoch);
      const data::Image8 panel = sample_panel(images.data() + k * plane, truths.data() + k * plane,
                                              probs.data() + k * plane, h, w);
      data::write_png((samples_dir / (name + stem(source.id(ids[k]).name) + ".png")).string(),
                      panel);
    }
  }
  if (comm) comm->allreduce_sum(sums, 4);
  net.train();
  ValidationResult r;
  r.slices = size_t(sums[3]);
  r.loss = sums[0] / sums[3];
  r.dice = sums[1] / sums[3];
  r.jaccard = sums[2] / sums[3];
  return r;
}

// Keeps the header and the rows of epochs <= epochs_done (a run stopped between writing a
// row and its checkpoint would otherwise log that epoch twice).
void trim_log(const fs::path& log_path, int epochs_done) {
  std::ifstream in(log_path);
  ICH_CHECK(in, "cannot open " << log_path.string() << " to resume the run");
  std::string line, kept;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (header) {
      ICH_CHECK(line == kLogHeader, log_path.string()
                                        << " does not start with the header " << kLogHeader);
      header = false;
    } else if (std::atoi(line.c_str()) > epochs_done) {
      continue;
    }
    kept += line + "\n";
  }
  data::write_file_atomic(log_path.string(), kept);
}

void append_log(const fs::path& log_path, const std::string& row) {
  std::ofstream out(log_path, std::ios::app);
  out << row << "\n";
  out.flush();
  ICH_CHECK(out.good(), "cannot append to " << log_path.string() << " (disk full?)");
}

// Rank 0's last checkpoint, loaded on every rank: rank 0 reads the file and broadcasts its
// bytes; the other ranks load them from a private temporary file (their machines need not
// see rank 0's run folder). Returns the checkpoint's metadata.
std::map<std::string, std::string> load_last_checkpoint(const fs::path& last_path, Unet& net,
                                                        Adam& adam, ProcessGroup* comm) {
  if (!comm || comm->size() == 1) return load_checkpoint(last_path.string(), net, &adam);
  std::string bytes;
  if (comm->is_root()) {
    std::ifstream in(last_path, std::ios::binary);
    ICH_CHECK(in, "cannot read " << last_path.string());
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  comm->broadcast_string(&bytes);
  if (comm->is_root()) return load_checkpoint(last_path.string(), net, &adam);
  const fs::path copy =
      fs::temp_directory_path() / ("ichseg-resume-rank" + std::to_string(comm->rank()) + "-" +
                                   std::to_string(::getpid()) + ".safetensors");
  data::write_file_atomic(copy.string(), bytes);
  try {
    auto metadata = load_checkpoint(copy.string(), net, &adam);
    fs::remove(copy);
    return metadata;
  } catch (...) {
    std::error_code ec;
    fs::remove(copy, ec);
    throw;
  }
}

int64_t metadata_int(const std::map<std::string, std::string>& m, const char* key,
                     int64_t fallback) {
  const auto it = m.find(key);
  return it == m.end() ? fallback : std::atoll(it->second.c_str());
}

}  // namespace

TrainResult run_training(const TrainConfig& config, const TrainOptions& options) {
  ICH_CHECK(!options.out_dir.empty(), "no run folder: pass --out RUN_DIR");
  ProcessGroup* const comm = options.comm;
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->size() : 1;
  const bool root = rank == 0;
  const bool async = config.distributed == "async";
  ICH_CHECK(config.distributed != "none" || world == 1,
            "this process is one of " << world
                                      << " started by mpirun, but --distributed is none: pass "
                                         "--distributed sync or async, or run one process");
  ICH_CHECK(!async || world >= 2,
            "--distributed async needs rank 0 as the parameter server and at least one worker: "
            "start it with mpirun -np 2 or more");
  ICH_CHECK(!async || options.stop_at_step == 0,
            "the --stop-at-step test hook counts synchronous steps; it does not apply to "
            "--distributed async");
  // Synchronous: world x accumulate shards, this rank's are rank*accumulate + m. Async: the
  // workers' world - 1 shards; rank 0 (the server) reads no training batches.
  const int shards = async ? world - 1 : world * config.accumulate;
  const int micro = async ? 1 : config.accumulate;
  const int first_shard = async ? std::max(0, rank - 1) : rank * config.accumulate;

  const fs::path run(options.out_dir);
  const fs::path log_path = run / "log.csv", config_path = run / "config.json";
  const fs::path checkpoints = run / "checkpoints", samples_dir = run / "samples";
  const fs::path last_path = checkpoints / "last.safetensors";
  const fs::path best_path = checkpoints / "best.safetensors";
  // Only rank 0 looks at (and writes) the run folder.
  if (root && options.resume) {
    ICH_CHECK(fs::exists(last_path), "cannot resume: " << last_path.string()
                                                       << " does not exist (no run was started in "
                                                       << run.string() << ")");
  } else if (root) {
    ICH_CHECK(!fs::exists(config_path) && !fs::exists(log_path) && !fs::exists(checkpoints),
              run.string() << " already holds a training run: pass --resume to continue it, or "
                              "choose another --out");
  }
  const Device device = Device::parse(config.device);
  const auto train_source = open_slices(config, config.train_split, config.only_hemorrhage);
  const auto val_source = open_slices(config, config.val_split, config.only_hemorrhage);
  if (root) {
    std::set<int> train_patients, shared;
    for (size_t i = 0; i < train_source->size(); ++i)
      train_patients.insert(train_source->id(i).patient);
    for (size_t i = 0; i < val_source->size(); ++i) {
      const int p = val_source->id(i).patient;
      if (p >= 0 && train_patients.count(p)) shared.insert(p);
    }
    if (!shared.empty())
      std::fprintf(stderr,
                   "ichseg train: warning: %zu patient(s) are in both the '%s' and the '%s' "
                   "split: the validation scores are not independent\n",
                   shared.size(), config.train_split.c_str(), config.val_split.c_str());
  }

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
  std::vector<std::unique_ptr<data::BatchLoader>> loaders;
  for (int m = 0; m < micro; ++m) {
    lo.shard = first_shard + m;
    loaders.push_back(std::make_unique<data::BatchLoader>(train_source, lo));
  }
  // Per rank (and per worker in async); every shard takes as many steps.
  const int64_t steps_per_epoch = static_cast<int64_t>(loaders[0]->batches_per_epoch());
  // Optimisation steps per epoch: sync, one per step; async, one per worker push.
  const int64_t updates_per_epoch = async ? steps_per_epoch * (world - 1) : steps_per_epoch;
  const size_t samples_per_epoch = loaders[0]->samples_per_epoch() * size_t(shards);
  // Only now, with the data readable, does the run folder appear.
  if (root) {
    fs::create_directories(checkpoints);
    fs::create_directories(samples_dir);
  }

  Unet net(config.unet(), config.seed);
  net.to(device);
  AdamOptions adam_options;
  adam_options.lr = static_cast<float>(config.lr);
  adam_options.weight_decay = static_cast<float>(config.weight_decay);
  Adam adam(net.named_parameters(), adam_options);
  LrSchedule schedule;
  schedule.kind = LrSchedule::parse_kind(config.lr_schedule);
  schedule.base_lr = static_cast<float>(config.lr);
  schedule.total_steps = int64_t(config.epochs) * updates_per_epoch;

  const auto metadata = [&](const RunState& st) {
    auto m = st.metadata(config, steps_per_epoch);
    m["train.shards"] = std::to_string(shards);
    m["train.ranks"] = std::to_string(world);
    m["train.distributed"] = config.distributed;
    m["train.sync_bn"] = config.sync_bn ? "1" : "0";
    return m;
  };

  RunState state;
  if (options.resume) {
    const auto saved = load_last_checkpoint(last_path, net, adam, comm);
    state = RunState::from_metadata(saved, last_path.string());
    const auto saved_steps = saved.find("train.steps_per_epoch");
    const int64_t saved_shards = metadata_int(saved, "train.shards", 1);
    const auto saved_mode = saved.find("train.distributed");
    const bool saved_async = saved_mode != saved.end() && saved_mode->second == "async";
    ICH_CHECK(saved_shards == shards && saved_async == async,
              "cannot resume: the run was trained on "
                  << saved_shards << (saved_async ? " asynchronous workers" : " shards")
                  << " (ranks x --accumulate), this job has " << shards
                  << (async ? " asynchronous workers" : " shards")
                  << "; start it with the same number of ranks and --accumulate");
    // Switching synchronised BatchNorm on or off would change what the rest of the run
    // computes, and the resume would no longer be exact.
    const bool saved_sync_bn = metadata_int(saved, "train.sync_bn", 0) != 0;
    ICH_CHECK(saved_sync_bn == config.sync_bn,
              "cannot resume: the run was trained "
                  << (saved_sync_bn ? "with" : "without") << " --sync-bn, this job is "
                  << (config.sync_bn ? "with" : "without") << " it; resume with "
                  << (saved_sync_bn ? "--sync-bn" : "--no-sync-bn")
                  << " (or leave the flag out: config.json has it)");
    ICH_CHECK(saved_steps != saved.end() && saved_steps->second == std::to_string(steps_per_epoch),
              "cannot resume: the run had "
                  << (saved_steps == saved.end() ? std::string("?") : saved_steps->second)
                  << " steps per epoch, the data and batch size now give " << steps_per_epoch
                  << " (were --data, the split or --batch changed?)");
    if (root) trim_log(log_path, state.epochs_done);
  } else if (root) {
    nlohmann::json j = config_to_json(config);
    j["info"] = {{"model", config.unet().str()},
                 {"parameters", net.parameter_count()},
                 {"data_kind", data_kind(config.data) == DataKind::prepared ? "prepared" : "ctich"},
                 {"train_slices", train_source->size()},
                 {"val_slices", val_source->size()},
                 {"samples_per_epoch", samples_per_epoch},
                 {"steps_per_epoch", steps_per_epoch},
                 {"ranks", world},
                 {"global_batch", async ? config.batch : config.batch * micro * world},
                 {"openblas_core", cpu::blas_core_name()},
                 {"out", options.out_dir},
                 {"command", options.command_line}};
    write_json_file(config_path.string(), j);
    data::write_file_atomic(log_path.string(), std::string(kLogHeader) + "\n");
  }
  // Every rank starts from rank 0's weights, BatchNorm statistics (and, resuming, Adam state
  // and position: all ranks loaded the same checkpoint). Dropout draws differ per rank.
  if (comm) broadcast_parameters(net, *comm);
  // Synchronised BatchNorm: every training forward exchanges the layers' statistics over
  // the ranks, so they stay identical and the effective BatchNorm batch is the global one.
  // A world of one rank has nothing to exchange.
  if (config.sync_bn && comm && world > 1) set_sync_batch_norm(net, comm);
  net.dropout_generator().seed += uint64_t(rank);
  std::unique_ptr<GradientBucketer> bucketer;
  if (world > 1 && !async) bucketer = std::make_unique<GradientBucketer>(net.parameters());

  Progress progress(updates_per_epoch, !launched_by_mpirun());
  const auto say = [&](const std::string& text) {
    if (root) progress.line(text);
  };
  {
    std::ostringstream os;
    os << "ichseg train: " << config.unet().str() << ", " << net.parameter_count()
       << " parameters, on " << device.str();
    if (async)
      os << " x " << world - 1 << " async workers (rank 0: parameter server)";
    else if (world > 1)
      os << " x " << world << " ranks (sync" << (config.sync_bn ? ", synchronised BatchNorm" : "")
         << ")";
    os << "; " << train_source->size() << " training slices (" << samples_per_epoch << " samples, "
       << updates_per_epoch << " steps of " << config.batch;
    if (!async && micro * world > 1)
      os << " x " << micro * world << " = " << config.batch * micro * world;
    os << " per epoch), " << val_source->size() << " validation slices; loss " << config.loss
       << ", lr " << config.lr;
    if (options.resume)
      os << "; resuming after epoch " << state.epochs_done << " step " << state.step_in_epoch;
    say(os.str());
  }
  if (state.epochs_done >= config.epochs) {
    say("nothing to do: the run has finished its " + std::to_string(state.epochs_done) +
        " epochs (pass --epochs N to train further)");
  }

  const std::vector<size_t> samples = pick_display_slices(*val_source, config.val_samples);
  StopSignalGuard signal_guard;
  TrainResult result;
  const auto run_start = Clock::now();
  int64_t steps_this_process = 0;
  double train_seconds_this_process = 0.0;
  const auto finish_result = [&] {
    result.epochs_done = state.epochs_done;
    result.global_step = state.global_step;
    result.best_dice = state.best_dice;
    result.best_epoch = state.best_epoch;
  };

  // Forward and backward of one batch (grads accumulate); returns the loss.
  const auto forward_backward = [&](const data::Batch& batch, int epoch, std::vector<float>* p,
                                    float lr) {
    const Shape shape{batch.n, 1, batch.h, batch.w};
    const Tensor x = Tensor::from_host(batch.images, shape, device);
    const Tensor y = Tensor::from_host(batch.masks, shape, device);
    const Tensor prob = net.forward(x);
    // The output is checked before the loss: BCE refuses NaN probabilities with a message
    // about sigmoids, which would hide that the weights diverged.
    *p = prob.to_host();
    const bool finite_output =
        std::all_of(p->begin(), p->end(), [](float v) { return std::isfinite(v); });
    Tensor loss;
    if (finite_output) loss = training_loss(config.loss, prob, y);
    const float value = finite_output ? loss.item() : NAN;
    ICH_CHECK(std::isfinite(value),
              "the loss became NaN at epoch "
                  << epoch << ", step " << state.step_in_epoch + 1 << " of " << updates_per_epoch
                  << " (step " << state.global_step + 1 << " of the run)"
                  << (finite_output ? "" : ": the network's output is not finite")
                  << "; training diverged: lower --lr (now " << lr << ") or check the data. "
                  << (fs::exists(last_path) ? "The last good checkpoint is " + last_path.string()
                                            : std::string("No checkpoint was written yet.")));
    loss.backward();
    return value;
  };
  const auto failure_hooks = [&](int64_t step) {
    // Test hooks: the last rank dies as from `kill -9`, or stops answering as a rank stuck
    // in a loop or a driver call, before this step of the run.
    if (options.kill_at_step > 0 && rank == world - 1 && step == options.kill_at_step) {
      std::fprintf(stderr, "rank %d: killing itself before step %lld (--kill-at-step)\n", rank,
                   static_cast<long long>(step));
      std::fflush(stderr);
      std::raise(SIGKILL);
    }
    if (options.hang_at_step > 0 && rank == world - 1 && step == options.hang_at_step) {
      std::fprintf(stderr, "rank %d: hanging before step %lld (--hang-at-step)\n", rank,
                   static_cast<long long>(step));
      std::fflush(stderr);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  };

  // The end of an epoch: validation, the log row, checkpoints (rank 0 writes them).
  double epoch_train_seconds = 0.0;
  int64_t epoch_images = 0;
  auto epoch_start = Clock::now();
  const auto end_epoch = [&](int epoch, float lr, ProcessGroup* validation_comm) {
    const ValidationResult v =
        validate(net, device, *val_source, config, samples, samples_dir, epoch, validation_comm);
    const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const double train_loss = state.images ? state.loss_sum / double(state.images) : NAN;
    const double images_per_s = epoch_images / std::max(epoch_train_seconds, 1e-9);
    state.epochs_done = epoch;
    state.step_in_epoch = 0;
    state.loss_sum = 0.0;
    state.images = 0;
    state.counts = ConfusionCounts{};
    const bool improved = v.dice > state.best_dice;
    if (improved) {
      state.best_dice = v.dice;
      state.best_epoch = epoch;
    }
    if (root) {
      char row[512];
      std::snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.2f", epoch, train_loss,
                    v.loss, v.dice, v.jaccard, double(lr), seconds, images_per_s);
      append_log(log_path, row);
      if (improved) save_checkpoint(best_path.string(), net, &adam, metadata(state));
      save_checkpoint(last_path.string(), net, &adam, metadata(state));
      char text[512];
      std::snprintf(text, sizeof text,
                    "epoch %d/%d: train loss %.4f, val loss %.4f, val Dice %.4f, val Jaccard "
                    "%.4f, lr %.3g, %.1f s, %.1f img/s%s",
                    epoch, config.epochs, train_loss, v.loss, v.dice, v.jaccard, double(lr),
                    seconds, images_per_s, improved ? " (best)" : "");
      progress.line(text);
    }
    epoch_train_seconds = 0.0;
    epoch_images = 0;
    epoch_start = Clock::now();
  };
  const auto add_step = [&](const double* s) {  // loss sum, images, tp, fp, fn, tn
    state.loss_sum += s[0];
    state.images += int64_t(s[1]);
    ConfusionCounts c;
    c.tp = int64_t(s[2]), c.fp = int64_t(s[3]), c.fn = int64_t(s[4]), c.tn = int64_t(s[5]);
    state.counts += c;
    epoch_images += int64_t(s[1]);
    ++state.step_in_epoch;
    ++state.global_step;
  };
  const auto show_step = [&](int epoch, double seconds) {
    ++steps_this_process;
    epoch_train_seconds += seconds;
    train_seconds_this_process += seconds;
    const int64_t remaining = int64_t(config.epochs) * updates_per_epoch - state.global_step;
    if (root)
      progress.step(epoch, config.epochs, state.step_in_epoch, updates_per_epoch,
                    state.loss_sum / double(state.images), segmentation_metrics(state.counts).dice,
                    epoch_images / std::max(epoch_train_seconds, 1e-9),
                    remaining * train_seconds_this_process / double(steps_this_process));
  };

  if (async && root) {
    // ---- the parameter server: applies the workers' gradients as they arrive; an epoch
    // ends after updates_per_epoch of them. A run interrupted mid-epoch restarts that epoch
    // (docs/DISTRIBUTED.md): the checkpoint then keeps the weights but not the position.
    state.step_in_epoch = 0;
    state.loss_sum = 0.0;
    state.images = 0;
    state.counts = ConfusionCounts{};
    ParameterServer server(net, adam, *comm, config.staleness);
    int epoch = state.epochs_done + 1;
    float lr = schedule.at(state.global_step);
    adam.set_lr(lr);
    auto step_start = Clock::now();
    const AsyncStats stats = server.serve([&](int64_t, const PushStats& s) {
      add_step(s.data());
      show_step(epoch, std::chrono::duration<double>(Clock::now() - step_start).count());
      if (state.step_in_epoch == updates_per_epoch && epoch <= config.epochs) {
        end_epoch(epoch, lr, nullptr);
        ++epoch;
      }
      lr = schedule.at(state.global_step);
      adam.set_lr(lr);
      step_start = Clock::now();
    });
    std::ostringstream os;
    os << "async: " << stats.updates << " updates, " << stats.rejected
       << " rejected as too stale, staleness mean " << stats.mean_staleness << " max "
       << stats.max_staleness;
    say(os.str());
    if (state.epochs_done < config.epochs) {
      RunState restart = state;
      restart.step_in_epoch = 0;
      restart.loss_sum = 0.0;
      restart.images = 0;
      restart.counts = ConfusionCounts{};
      save_checkpoint(last_path.string(), net, &adam, metadata(restart));
      result.stopped_early = true;
      result.stop_signal = g_stop_signal;
      say("stopped in epoch " + std::to_string(state.epochs_done + 1) + "; checkpoint " +
          last_path.string() + " (resuming restarts that epoch)");
    }
  } else if (async) {
    // ---- an async worker: its shard of every epoch, one push per batch.
    AsyncWorker worker(net, *comm);
    net.train();
    data::Batch batch;
    std::vector<float> p;
    int64_t local_step = 0;
    bool stop = false;
    for (int epoch = state.epochs_done + 1; epoch <= config.epochs && !stop; ++epoch) {
      loaders[0]->start_epoch(epoch - 1);
      while (loaders[0]->next(&batch)) {
        failure_hooks(++local_step);
        PushStats s{};
        do {
          adam.zero_grad();
          s[0] = double(forward_backward(batch, epoch, &p, adam.lr())) * batch.n;
          s[1] = batch.n;
          const ConfusionCounts c = confusion_counts(p.data(), batch.masks.data(), p.size());
          s[2] = double(c.tp), s[3] = double(c.fp), s[4] = double(c.fn), s[5] = double(c.tn);
        } while (!worker.push_and_pull(s));  // too stale: the same batch on the fresh weights
        if (g_stop_signal) {
          stop = true;
          result.stop_signal = g_stop_signal;
          result.stopped_early = true;
          break;
        }
      }
    }
    worker.finish();
  } else {
    // ---- one process, or synchronous data parallelism.
    for (int epoch = state.epochs_done + 1; epoch <= config.epochs; ++epoch) {
      epoch_start = Clock::now();
      std::vector<data::Batch> batches(static_cast<size_t>(micro));
      for (int m = 0; m < micro; ++m) {
        loaders[size_t(m)]->start_epoch(epoch - 1);
        for (int64_t k = 0; k < state.step_in_epoch; ++k)
          loaders[size_t(m)]->next(&batches[size_t(m)]);  // done before the stop
      }
      net.train();
      float lr = adam.lr();
      while (true) {
        const auto step_start = Clock::now();
        bool more = true;
        for (int m = 0; m < micro; ++m)
          more = loaders[size_t(m)]->next(&batches[size_t(m)]) && more;
        if (!more) break;
        failure_hooks(state.global_step + 1);
        lr = schedule.at(state.global_step);
        adam.set_lr(lr);
        adam.zero_grad();
        // loss sum, images, tp, fp, fn, tn, stop requests: summed over the ranks
        double s[7] = {0, 0, 0, 0, 0, 0, 0};
        std::vector<float> p;
        for (int m = 0; m < micro; ++m) {
          const data::Batch& batch = batches[size_t(m)];
          s[0] += double(forward_backward(batch, epoch, &p, lr)) * batch.n;
          s[1] += batch.n;
          const ConfusionCounts c = confusion_counts(p.data(), batch.masks.data(), p.size());
          s[2] += double(c.tp), s[3] += double(c.fp), s[4] += double(c.fn), s[5] += double(c.tn);
        }
        if (micro > 1) {
          NoGradGuard no_grad;
          for (Tensor param : net.parameters())
            if (param.grad().defined()) param.set_grad(scale(param.grad(), 1.0f / float(micro)));
        }
        if (bucketer) bucketer->allreduce_average(*comm);
        adam.step();
        const bool hook = options.stop_at_step > 0 && state.global_step + 1 >= options.stop_at_step;
        s[6] = g_stop_signal || hook ? 1.0 : 0.0;
        if (comm) comm->allreduce_sum(s, 7);
        add_step(s);
        show_step(epoch, std::chrono::duration<double>(Clock::now() - step_start).count());

        if (s[6] > 0) {  // a signal on any rank, or the hook: every rank stops after this step
          if (root) save_checkpoint(last_path.string(), net, &adam, metadata(state));
          result.stop_signal = g_stop_signal ? int(g_stop_signal) : (hook ? 0 : SIGINT);
          result.stopped_early = true;
          std::ostringstream os;
          os << "stopped "
             << (hook ? "at step " + std::to_string(state.global_step) + " (--stop-at-step)"
                      : std::string(result.stop_signal == SIGTERM ? "by SIGTERM" : "by SIGINT"))
             << " in epoch " << epoch << " after step " << state.step_in_epoch << " of "
             << steps_per_epoch << "; checkpoint " << last_path.string() << "; continue with: "
             << (world > 1 ? "mpirun -np " + std::to_string(world) + " " : "")
             << "ichseg train --out " << options.out_dir << " --resume";
          say(os.str());
          finish_result();
          return result;
        }
      }
      // Rank 0's BatchNorm running statistics are the ones saved; every rank validates with
      // them, each its share of the validation slices.
      if (comm) broadcast_parameters(net, *comm);
      end_epoch(epoch, lr, comm);
    }
  }

  const double total = std::chrono::duration<double>(Clock::now() - run_start).count();
  if (state.best_epoch > 0 && !result.stopped_early) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "done in %s: best val Dice %.4f at epoch %d; checkpoints in %s",
                  duration_text(total).c_str(), state.best_dice, state.best_epoch,
                  checkpoints.string().c_str());
    say(text);
  }
  finish_result();
  return result;
}

}  // namespace ich::app
