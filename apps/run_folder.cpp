#include "apps/run_folder.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "data/fileutil.h"

namespace fs = std::filesystem;

namespace ich::app {

void RunFolder::check_can_start() const {
  ICH_CHECK(!fs::exists(config_json()) && !fs::exists(log_csv()) && !fs::exists(checkpoints()),
            dir_.string() << " already holds a training run: pass --resume to continue it, or "
                             "choose another --out");
}

void RunFolder::check_can_resume() const {
  ICH_CHECK(fs::exists(last_checkpoint()),
            "cannot resume: " << last_checkpoint().string()
                              << " does not exist (no run was started in " << dir_.string() << ")");
}

void RunFolder::create() const {
  fs::create_directories(checkpoints());
  fs::create_directories(samples());
}

TrainConfig RunFolder::read_config() const {
  return TrainConfig::from_json(read_json_file(config_json().string()), config_json().string());
}

void RunFolder::write_config(const TrainConfig& config, const nlohmann::json& info) const {
  nlohmann::json j = config.to_json();
  j["info"] = info;
  write_json_file(config_json().string(), j);
}

void RunFolder::start_log() const {
  data::write_file_atomic(log_csv().string(), std::string(kLogHeader) + "\n");
}

void RunFolder::trim_log(int epochs_done) const {
  const fs::path path = log_csv();
  std::ifstream in(path);
  ICH_CHECK(in, "cannot open " << path.string() << " to resume the run");
  std::string line, kept;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (header) {
      ICH_CHECK(line == kLogHeader, path.string()
                                        << " does not start with the header " << kLogHeader);
      header = false;
    } else if (std::atoi(line.c_str()) > epochs_done) {
      continue;
    }
    kept += line + "\n";
  }
  data::write_file_atomic(path.string(), kept);
}

void RunFolder::append_log(const EpochRow& r) const {
  char row[512];
  std::snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.2f", r.epoch, r.train_loss,
                r.val_loss, r.val_dice, r.val_jaccard, r.lr, r.seconds, r.images_per_s);
  std::ofstream out(log_csv(), std::ios::app);
  out << row << "\n";
  out.flush();
  ICH_CHECK(out.good(), "cannot append to " << log_csv().string() << " (disk full?)");
}

}  // namespace ich::app
