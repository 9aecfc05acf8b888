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
#include <set>
#include <sstream>

#include "apps/evaluation.h"
#include "apps/figures.h"
#include "apps/predictor.h"
#include "core/error.h"
#include "data/fileutil.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/metrics.h"
#include "engine/optim.h"
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
  explicit Progress(int64_t steps_per_epoch)
      : tty_(::isatty(STDOUT_FILENO) != 0), every_(std::max<int64_t>(1, steps_per_epoch / 4)) {}

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

ValidationResult validate(Unet& net, const Device& device, const data::SliceSource& source,
                          const TrainConfig& config, const std::vector<size_t>& samples,
                          const fs::path& samples_dir, int epoch) {
  net.eval();
  InferenceOptions io;  // whole slices, also after patch training (the net is convolutional)
  io.batch = config.batch;
  ValidationResult r;
  double loss_sum = 0.0;
  double dice_sum = 0.0, jaccard_sum = 0.0;
  data::Image8 image, mask;
  size_t i = 0;
  while (i < source.size()) {
    // A chunk: up to `batch` consecutive slices of one size.
    std::vector<float> images, truths;  // (n, h, w)
    std::vector<size_t> ids;
    int h = 0, w = 0;
    while (i < source.size() && int(ids.size()) < config.batch) {
      source.load(i, &image, &mask);
      if (!ids.empty() && (image.w != w || image.h != h)) break;
      w = image.w;
      h = image.h;
      for (uint8_t v : image.pixels) images.push_back(v / 255.0f);
      for (uint8_t v : mask.pixels) truths.push_back(v ? 1.0f : 0.0f);
      ids.push_back(i++);
    }
    const int n = static_cast<int>(ids.size());
    const std::vector<float> probs = predict_images(net, device, images.data(), n, h, w, io);
    {
      NoGradGuard no_grad;
      const Tensor p = Tensor::from_host(probs, {n, 1, h, w});
      const Tensor t = Tensor::from_host(truths, {n, 1, h, w});
      loss_sum += double(training_loss(config.loss, p, t).item()) * n;
    }
    const size_t plane = size_t(h) * w;
    for (int k = 0; k < n; ++k) {
      const SegmentationMetrics m =
          segmentation_metrics(probs.data() + k * plane, truths.data() + k * plane, plane);
      dice_sum += m.dice;
      jaccard_sum += m.jaccard;
      if (std::binary_search(samples.begin(), samples.end(), ids[k])) {
        char name[64];
        std::snprintf(name, sizeof name, "epoch_%03d_", epoch);
        const data::Image8 panel = sample_panel(
            images.data() + k * plane, truths.data() + k * plane, probs.data() + k * plane, h, w);
        data::write_png((samples_dir / (name + stem(source.id(ids[k]).name) + ".png")).string(),
                        panel);
      }
    }
    r.slices += ids.size();
  }
  net.train();
  r.loss = loss_sum / double(r.slices);
  r.dice = dice_sum / double(r.slices);
  r.jaccard = jaccard_sum / double(r.slices);
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

}  // namespace

TrainResult run_training(const TrainConfig& config, const TrainOptions& options) {
  ICH_CHECK(!options.out_dir.empty(), "no run folder: pass --out RUN_DIR");
  const fs::path run(options.out_dir);
  const fs::path log_path = run / "log.csv", config_path = run / "config.json";
  const fs::path checkpoints = run / "checkpoints", samples_dir = run / "samples";
  const fs::path last_path = checkpoints / "last.safetensors";
  const fs::path best_path = checkpoints / "best.safetensors";
  if (options.resume) {
    ICH_CHECK(fs::exists(last_path), "cannot resume: " << last_path.string()
                                                       << " does not exist (no run was started in "
                                                       << run.string() << ")");
  } else {
    ICH_CHECK(!fs::exists(config_path) && !fs::exists(log_path) && !fs::exists(checkpoints),
              run.string() << " already holds a training run: pass --resume to continue it, or "
                              "choose another --out");
  }
  const Device device = Device::parse(config.device);
  const auto train_source = open_slices(config, config.train_split, config.only_hemorrhage);
  const auto val_source = open_slices(config, config.val_split, config.only_hemorrhage);
  {
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
  if (config.augment) {
    lo.augment.flip_horizontal = 0.5;
    lo.augment.rotate_degrees = 10.0;
    lo.augment.elastic_sigma = 4.0;
    lo.augment.noise_std = 0.02;
  }
  data::BatchLoader loader(train_source, lo);
  const int64_t steps_per_epoch = static_cast<int64_t>(loader.batches_per_epoch());
  // Only now, with the data readable, does the run folder appear.
  fs::create_directories(checkpoints);
  fs::create_directories(samples_dir);

  Unet net(config.unet(), config.seed);
  net.to(device);
  AdamOptions adam_options;
  adam_options.lr = static_cast<float>(config.lr);
  adam_options.weight_decay = static_cast<float>(config.weight_decay);
  Adam adam(net.named_parameters(), adam_options);
  LrSchedule schedule;
  schedule.kind = LrSchedule::parse_kind(config.lr_schedule);
  schedule.base_lr = static_cast<float>(config.lr);
  schedule.total_steps = int64_t(config.epochs) * steps_per_epoch;

  RunState state;
  if (options.resume) {
    const auto metadata = load_checkpoint(last_path.string(), net, &adam);
    state = RunState::from_metadata(metadata, last_path.string());
    const auto saved_steps = metadata.find("train.steps_per_epoch");
    ICH_CHECK(
        saved_steps != metadata.end() && saved_steps->second == std::to_string(steps_per_epoch),
        "cannot resume: the run had "
            << (saved_steps == metadata.end() ? std::string("?") : saved_steps->second)
            << " steps per epoch, the data and batch size now give " << steps_per_epoch
            << " (were --data, the split or --batch changed?)");
    trim_log(log_path, state.epochs_done);
  } else {
    nlohmann::json j = config_to_json(config);
    j["info"] = {{"model", config.unet().str()},
                 {"parameters", net.parameter_count()},
                 {"data_kind", data_kind(config.data) == DataKind::prepared ? "prepared" : "ctich"},
                 {"train_slices", train_source->size()},
                 {"val_slices", val_source->size()},
                 {"samples_per_epoch", loader.samples_per_epoch()},
                 {"steps_per_epoch", steps_per_epoch},
                 {"out", options.out_dir},
                 {"command", options.command_line}};
    write_json_file(config_path.string(), j);
    data::write_file_atomic(log_path.string(), std::string(kLogHeader) + "\n");
  }

  Progress progress(steps_per_epoch);
  {
    std::ostringstream os;
    os << "ichseg train: " << config.unet().str() << ", " << net.parameter_count()
       << " parameters, on " << device.str() << "; " << train_source->size() << " training slices ("
       << loader.samples_per_epoch() << " samples, " << steps_per_epoch << " steps of "
       << config.batch << " per epoch), " << val_source->size() << " validation slices; loss "
       << config.loss << ", lr " << config.lr;
    if (options.resume)
      os << "; resuming after epoch " << state.epochs_done << " step " << state.step_in_epoch;
    progress.line(os.str());
  }
  if (state.epochs_done >= config.epochs) {
    progress.line("nothing to do: the run has finished its " + std::to_string(state.epochs_done) +
                  " epochs (pass --epochs N to train further)");
  }

  const std::vector<size_t> samples = pick_display_slices(*val_source, config.val_samples);
  StopSignalGuard signal_guard;
  TrainResult result;
  const auto run_start = Clock::now();
  int64_t steps_this_process = 0;
  double train_seconds_this_process = 0.0;

  for (int epoch = state.epochs_done + 1; epoch <= config.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    loader.start_epoch(epoch - 1);
    data::Batch batch;
    for (int64_t k = 0; k < state.step_in_epoch; ++k) loader.next(&batch);  // done before the stop
    net.train();
    double train_seconds = 0.0;
    int64_t images_this_process = 0;
    float lr = adam.lr();
    while (true) {
      const auto step_start = Clock::now();
      if (!loader.next(&batch)) break;
      const Shape shape{batch.n, 1, batch.h, batch.w};
      const Tensor x = Tensor::from_host(batch.images, shape, device);
      const Tensor y = Tensor::from_host(batch.masks, shape, device);
      lr = schedule.at(state.global_step);
      adam.set_lr(lr);
      adam.zero_grad();
      const Tensor prob = net.forward(x);
      // The output is checked before the loss: BCE refuses NaN probabilities with a message
      // about sigmoids, which would hide that the weights diverged.
      const std::vector<float> p = prob.to_host();
      const bool finite_output =
          std::all_of(p.begin(), p.end(), [](float v) { return std::isfinite(v); });
      Tensor loss;
      if (finite_output) loss = training_loss(config.loss, prob, y);
      const float value = finite_output ? loss.item() : NAN;
      ICH_CHECK(std::isfinite(value),
                "the loss became NaN at epoch "
                    << epoch << ", step " << state.step_in_epoch + 1 << " of " << steps_per_epoch
                    << " (step " << state.global_step + 1 << " of the run)"
                    << (finite_output ? "" : ": the network's output is not finite")
                    << "; training diverged: lower --lr (now " << lr << ") or check the data. "
                    << (fs::exists(last_path) ? "The last good checkpoint is " + last_path.string()
                                              : std::string("No checkpoint was written yet.")));
      loss.backward();
      adam.step();
      state.counts += confusion_counts(p.data(), batch.masks.data(), p.size());
      state.loss_sum += double(value) * batch.n;
      state.images += batch.n;
      ++state.step_in_epoch;
      ++state.global_step;
      ++steps_this_process;
      images_this_process += batch.n;
      const double step_seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
      train_seconds += step_seconds;
      train_seconds_this_process += step_seconds;

      const int64_t remaining = int64_t(config.epochs) * steps_per_epoch - state.global_step;
      const double dice_so_far =
          segmentation_metrics(state.counts).dice;  // global Dice of the epoch's batches
      progress.step(epoch, config.epochs, state.step_in_epoch, steps_per_epoch,
                    state.loss_sum / double(state.images), dice_so_far,
                    images_this_process / std::max(train_seconds, 1e-9),
                    remaining * train_seconds_this_process / double(steps_this_process));

      const bool hook = options.stop_at_step > 0 && state.global_step >= options.stop_at_step;
      if (g_stop_signal || hook) {
        save_checkpoint(last_path.string(), net, &adam, state.metadata(config, steps_per_epoch));
        result.stop_signal = g_stop_signal;
        result.stopped_early = true;
        std::ostringstream os;
        os << "stopped "
           << (hook ? "at step " + std::to_string(state.global_step) + " (--stop-at-step)"
                    : std::string(g_stop_signal == SIGINT ? "by SIGINT" : "by SIGTERM"))
           << " in epoch " << epoch << " after step " << state.step_in_epoch << " of "
           << steps_per_epoch << "; checkpoint " << last_path.string()
           << "; continue with: ichseg train --out " << options.out_dir << " --resume";
        progress.line(os.str());
        result.epochs_done = state.epochs_done;
        result.global_step = state.global_step;
        result.best_dice = state.best_dice;
        result.best_epoch = state.best_epoch;
        return result;
      }
    }

    const ValidationResult v =
        validate(net, device, *val_source, config, samples, samples_dir, epoch);
    const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const double train_loss = state.images ? state.loss_sum / double(state.images) : NAN;
    const double images_per_s = images_this_process / std::max(train_seconds, 1e-9);
    char row[512];
    std::snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.2f", epoch, train_loss,
                  v.loss, v.dice, v.jaccard, double(lr), seconds, images_per_s);
    append_log(log_path, row);

    state.epochs_done = epoch;
    state.step_in_epoch = 0;
    state.loss_sum = 0.0;
    state.images = 0;
    state.counts = ConfusionCounts{};
    const bool improved = v.dice > state.best_dice;
    if (improved) {
      state.best_dice = v.dice;
      state.best_epoch = epoch;
      save_checkpoint(best_path.string(), net, &adam, state.metadata(config, steps_per_epoch));
    }
    save_checkpoint(last_path.string(), net, &adam, state.metadata(config, steps_per_epoch));
    char text[512];
    std::snprintf(text, sizeof text,
                  "epoch %d/%d: train loss %.4f, val loss %.4f, val Dice %.4f, val Jaccard %.4f, "
                  "lr %.3g, %.1f s, %.1f img/s%s",
                  epoch, config.epochs, train_loss, v.loss, v.dice, v.jaccard, double(lr), seconds,
                  images_per_s, improved ? " (best)" : "");
    progress.line(text);
  }

  const double total = std::chrono::duration<double>(Clock::now() - run_start).count();
  if (state.best_epoch > 0) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "done in %s: best val Dice %.4f at epoch %d; checkpoints in %s",
                  duration_text(total).c_str(), state.best_dice, state.best_epoch,
                  checkpoints.string().c_str());
    progress.line(text);
  }
  result.epochs_done = state.epochs_done;
  result.global_step = state.global_step;
  result.best_dice = state.best_dice;
  result.best_epoch = state.best_epoch;
  return result;
}

}  // namespace ich::app
