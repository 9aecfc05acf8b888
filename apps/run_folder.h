// The folder of one training run: the one place that knows its layout, what `ichseg train`
// writes there, and what it reads back to resume; eval, predict and report find their inputs
// through it.
//
// RUN_DIR:
//   config.json                      the resolved TrainConfig (apps/train_config.h) + "info"
//   log.csv epoch,train_loss,val_loss,val_dice,val_jaccard,lr,seconds,images_per_s
//   samples/epoch_NNN_<slice>.png    fixed validation slices: image | truth | prediction
//   checkpoints/last.safetensors     after every epoch, and on SIGINT/SIGTERM mid-epoch
//   checkpoints/best.safetensors     the epoch with the highest validation Dice so far
//   eval.json, overlays/, report.html   written by `ichseg eval` and `ichseg report`
//
// Files are written to a temporary name and renamed (apps/checkpointer.h for the
// checkpoints); log.csv grows by one appended row per epoch, and is cut back to the
// checkpoint's epoch when a run resumes.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/train_config.h"

namespace ich::app {

// One row of log.csv.
struct EpochRow {
  int epoch = 0;
  double train_loss = 0, val_loss = 0, val_dice = 0, val_jaccard = 0, lr = 0;
  double seconds = 0, images_per_s = 0;  // timings
};

class RunFolder {
 public:
  static constexpr const char* kLogHeader =
      "epoch,train_loss,val_loss,val_dice,val_jaccard,lr,seconds,images_per_s";

  explicit RunFolder(const std::string& dir) : dir_(dir) {}

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path config_json() const { return dir_ / "config.json"; }
  std::filesystem::path log_csv() const { return dir_ / "log.csv"; }
  std::filesystem::path samples() const { return dir_ / "samples"; }
  std::filesystem::path overlays() const { return dir_ / "overlays"; }
  std::filesystem::path eval_json() const { return dir_ / "eval.json"; }
  std::filesystem::path report_html() const { return dir_ / "report.html"; }
  std::filesystem::path checkpoints() const { return dir_ / "checkpoints"; }
  std::filesystem::path last_checkpoint() const { return checkpoints() / "last.safetensors"; }
  std::filesystem::path best_checkpoint() const { return checkpoints() / "best.safetensors"; }

  // A new run: refuses a folder that already holds one.
  void check_can_start() const;
  // A resumed run: refuses a folder without a last checkpoint.
  void check_can_resume() const;
  // checkpoints/ and samples/.
  void create() const;

  // config.json merged into the defaults (the caller checks that it exists, with its own
  // message).
  TrainConfig read_config() const;
  // config.json: config.to_json() with `info` (for people; ignored when read) under "info".
  void write_config(const TrainConfig& config, const nlohmann::json& info) const;

  void start_log() const;  // the header alone
  // Keeps the header and the rows of epochs <= epochs_done (a run stopped between writing a
  // row and its checkpoint would otherwise log that epoch twice).
  void trim_log(int epochs_done) const;
  void append_log(const EpochRow& row) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace ich::app
