#include "apps/checkpointer.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "data/fileutil.h"
#include "engine/process_group.h"
#include "models/checkpoint.h"

namespace fs = std::filesystem;

namespace ich::app {

namespace {

// The checkpoint's metadata as a RunState's reader sees it: every value named in errors.
class MetadataReader {
 public:
  MetadataReader(const std::map<std::string, std::string>& m, const std::string& path)
      : m_(m), path_(path) {}

  const std::string& text(const char* key) const {
    const auto it = m_.find(key);
    ICH_CHECK(it != m_.end(),
              path_ << " has no '" << key << "' entry: it is not a checkpoint of ichseg train");
    return it->second;
  }
  int64_t integer(const char* key) const {
    char* end = nullptr;
    const long long v = std::strtoll(text(key).c_str(), &end, 10);
    ICH_CHECK(*end == '\0', path_ << ": '" << key << "' = '" << text(key) << "' is not an integer");
    return static_cast<int64_t>(v);
  }
  double number(const char* key) const {
    char* end = nullptr;
    const double v = std::strtod(text(key).c_str(), &end);
    ICH_CHECK(*end == '\0', path_ << ": '" << key << "' = '" << text(key) << "' is not a number");
    return v;
  }

 private:
  const std::map<std::string, std::string>& m_;
  const std::string& path_;
};

// The layout entries are optional: checkpoints of the first data-parallel runs lack some.
int64_t optional_int(const std::map<std::string, std::string>& m, const char* key,
                     int64_t fallback) {
  const auto it = m.find(key);
  return it == m.end() ? fallback : std::atoll(it->second.c_str());
}

// Rank 0's last checkpoint, loaded on every rank: rank 0 reads the file and broadcasts its
// bytes; the other ranks load them from a private temporary file (their machines need not
// see rank 0's run folder). Returns the checkpoint's metadata.
std::map<std::string, std::string> load_on_every_rank(const fs::path& last_path, Unet& net,
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

}  // namespace

std::string lossless_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void RunState::restart_epoch() {
  step_in_epoch = 0;
  loss_sum = 0.0;
  images = 0;
  counts = ConfusionCounts{};
}

std::map<std::string, std::string> Checkpointer::metadata(const RunState& s) const {
  return {{"ichseg.config", config_.to_json().dump()},
          {"data.wl", lossless_text(config_.wl)},
          {"data.ww", lossless_text(config_.ww)},
          {"train.patch", std::to_string(config_.patch)},
          {"train.loader_seed", std::to_string(config_.seed)},
          {"train.steps_per_epoch", std::to_string(job_.steps_per_epoch)},
          {"train.shards", std::to_string(job_.shards)},
          {"train.ranks", std::to_string(job_.ranks)},
          {"train.distributed", config_.distributed},
          {"train.sync_bn", config_.sync_bn ? "1" : "0"},
          {"train.epochs_done", std::to_string(s.epochs_done)},
          {"train.step_in_epoch", std::to_string(s.step_in_epoch)},
          {"train.global_step", std::to_string(s.global_step)},
          {"train.best_dice", lossless_text(s.best_dice)},
          {"train.best_epoch", std::to_string(s.best_epoch)},
          {"train.epoch_loss_sum", lossless_text(s.loss_sum)},
          {"train.epoch_images", std::to_string(s.images)},
          {"train.epoch_tp", std::to_string(s.counts.tp)},
          {"train.epoch_fp", std::to_string(s.counts.fp)},
          {"train.epoch_fn", std::to_string(s.counts.fn)}};
}

RunState Checkpointer::state_of(const std::map<std::string, std::string>& metadata,
                                const std::string& path) {
  const MetadataReader m(metadata, path);
  RunState s;
  s.epochs_done = static_cast<int>(m.integer("train.epochs_done"));
  s.step_in_epoch = m.integer("train.step_in_epoch");
  s.global_step = m.integer("train.global_step");
  s.best_dice = m.number("train.best_dice");
  s.best_epoch = static_cast<int>(m.integer("train.best_epoch"));
  s.loss_sum = m.number("train.epoch_loss_sum");
  s.images = m.integer("train.epoch_images");
  s.counts.tp = m.integer("train.epoch_tp");
  s.counts.fp = m.integer("train.epoch_fp");
  s.counts.fn = m.integer("train.epoch_fn");
  return s;
}

void Checkpointer::save(Unet& net, const Adam& adam, const RunState& state, bool best) const {
  if (!writer_) return;
  const auto m = metadata(state);
  if (best) save_checkpoint(folder_.best_checkpoint().string(), net, &adam, m);
  save_checkpoint(folder_.last_checkpoint().string(), net, &adam, m);
}

RunState Checkpointer::resume(Unet& net, Adam& adam, ProcessGroup* comm) const {
  const fs::path last = folder_.last_checkpoint();
  const auto saved = load_on_every_rank(last, net, adam, comm);
  const RunState state = state_of(saved, last.string());
  check_same_job(saved);
  return state;
}

void Checkpointer::check_same_job(const std::map<std::string, std::string>& saved) const {
  const bool async = config_.distributed == "async";
  const int64_t saved_shards = optional_int(saved, "train.shards", 1);
  const auto saved_mode = saved.find("train.distributed");
  const bool saved_async = saved_mode != saved.end() && saved_mode->second == "async";
  ICH_CHECK(saved_shards == job_.shards && saved_async == async,
            "cannot resume: the run was trained on "
                << saved_shards << (saved_async ? " asynchronous workers" : " shards")
                << " (ranks x --accumulate), this job has " << job_.shards
                << (async ? " asynchronous workers" : " shards")
                << "; start it with the same number of ranks and --accumulate");
  // Switching synchronised BatchNorm on or off would change what the rest of the run
  // computes, and the resume would no longer be exact.
  const bool saved_sync_bn = optional_int(saved, "train.sync_bn", 0) != 0;
  ICH_CHECK(saved_sync_bn == config_.sync_bn,
            "cannot resume: the run was trained "
                << (saved_sync_bn ? "with" : "without") << " --sync-bn, this job is "
                << (config_.sync_bn ? "with" : "without") << " it; resume with "
                << (saved_sync_bn ? "--sync-bn" : "--no-sync-bn")
                << " (or leave the flag out: config.json has it)");
  const auto saved_steps = saved.find("train.steps_per_epoch");
  ICH_CHECK(
      saved_steps != saved.end() && saved_steps->second == std::to_string(job_.steps_per_epoch),
      "cannot resume: the run had "
          << (saved_steps == saved.end() ? std::string("?") : saved_steps->second)
          << " steps per epoch, the data and batch size now give " << job_.steps_per_epoch
          << " (were --data, the split or --batch changed?)");
}

}  // namespace ich::app
