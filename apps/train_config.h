// The configuration of a training run: one struct, one table of its fields (config_fields(),
// the only place a field is named), and the ways of filling it, in increasing precedence:
//   defaults  <  --preset  <  --config FILE (JSON)  <  flags given on the command line.
// The JSON form is written and read by TrainConfig::to_json / merge_json alone: the run
// folder's config.json (apps/run_folder.h), the copy in every checkpoint's metadata
// ("ichseg.config"), and what rank 0 sends the other ranks of a data-parallel job.
// `ichseg train --config RUN_DIR/config.json` repeats a run and `--resume` continues it.
//
// JSON form: one flat object whose keys are the field names below (flag --train-split is key
// "train_split"), plus an optional "info" object that is written for people and ignored
// when read. An unknown key or a value of the wrong type is an error naming the file. A key
// that is missing keeps the value already there (so a file written before a field existed
// still reads, with that field's default).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "data/slices.h"
#include "models/unet.h"

namespace ich::app {

struct TrainConfig {
  std::string preset;  // "", "sokolovskyy" or "hssayeni"; applied before everything else

  // ---- data
  std::string data;  // a prepared folder (manifest.csv) or a CT-ICH folder (ct_scans/, masks/)
  std::string train_split = "train";
  std::string val_split = "val";
  bool only_hemorrhage = false;  // train and validate on slices whose mask is not empty
  // Raw CT-ICH folders only: the patient split and the window, as `ichseg prepare` takes
  // them, so that both give the same split and the same pixels.
  uint64_t split_seed = 0;
  double val_fraction = 0.2;
  double wl = 40.0, ww = 120.0;
  std::string nonfinite = "refuse";  // NaN/Inf voxels of a scan: refuse, zero or min

  // ---- model (models/unet.h; the defaults are the paper's)
  int width = 64;
  int depth = 3;
  double drop_rate = 0.4;
  double bn_momentum = 0.1;

  // ---- optimisation
  std::string device = "cpu";
  int epochs = 10;
  int batch = 8;
  double lr = 1e-3;
  std::string lr_schedule = "constant";  // constant, cosine, poly (per step, over the run)
  double weight_decay = 0.0;
  std::string loss = "dice+bce";  // dice (negative soft Dice), bce, dice+bce
  int patch = 0;                  // 0: whole slices; otherwise square patches of this side
  int stride = 80;                // between patches
  double negatives_per_positive = 1.0;
  bool augment = false;  // flips, small rotations, elastic deformation, intensity noise
  uint64_t seed = 1;     // weights, dropout, data order and augmentation
  int val_samples = 4;   // validation slices saved each epoch as image | truth | prediction

  // ---- data parallelism (docs/DISTRIBUTED.md)
  // none: one process. sync: every rank of `mpirun -np N` trains on its shard, gradients are
  // averaged before every Adam step (global batch = batch x accumulate x N). async: rank 0 is
  // a parameter server, ranks 1..N-1 push gradients and pull weights.
  std::string distributed = "none";
  int accumulate = 1;          // micro-batches of `batch` whose gradients are averaged per step
  int staleness = -1;          // async: reject gradients older than this many updates; -1: no bound
  double mpi_timeout = 120.0;  // seconds any rank waits for the others before ending the job
  // sync only: BatchNorm normalises with the statistics of all ranks' samples together
  // (synchronised BatchNorm) instead of each rank's own.
  bool sync_bn = false;

  // Throws ich::Error naming the first field out of range.
  void validate() const;
  UnetConfig unet() const;

  // Every field, under its key.
  nlohmann::json to_json() const;
  // Sets the fields present in `json` (and nothing else); `what` names the source in errors.
  void merge_json(const nlohmann::json& json, const std::string& what);
  // The defaults with `json` merged in.
  static TrainConfig from_json(const nlohmann::json& json, const std::string& what);
};

// One field of TrainConfig: its JSON key (and flag "--" + key with '_' -> '-').
struct ConfigField {
  const char* key;
  const char* help;
  std::variant<std::string TrainConfig::*, int TrainConfig::*, double TrainConfig::*,
               bool TrainConfig::*, uint64_t TrainConfig::*>
      member;

  std::string flag() const;  // "--train-split"
};
const std::vector<ConfigField>& config_fields();

// Names accepted by --preset, for messages.
std::vector<std::string> preset_names();
// Sets what the preset fixes; "" leaves the config as it is. Unknown names throw.
void apply_preset(const std::string& name, TrainConfig* config);

nlohmann::json read_json_file(const std::string& path);
void write_json_file(const std::string& path, const nlohmann::json& json);

// Registers one option per field on `app`, bound to the fields of `*flags`; bool fields get
// --name and --no-name.
void add_config_options(CLI::App& app, TrainConfig* flags);
// Copies into `config` every field whose option was given on the command line.
void apply_given_options(const CLI::App& app, const TrainConfig& flags, TrainConfig* config);

// The slices a run trains or validates on: `split` of config.data ("" or "all": every
// slice), only those with hemorrhage when only_hemorrhage. Throws ich::Error when the
// folder is neither a prepared folder nor a CT-ICH folder.
enum class DataKind { prepared, ctich };
DataKind data_kind(const std::string& dir);
std::shared_ptr<const data::SliceSource> open_slices(const TrainConfig& config,
                                                     const std::string& split,
                                                     bool only_hemorrhage);

}  // namespace ich::app
