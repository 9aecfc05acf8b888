#include "apps/train_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "data/fileutil.h"
#include "engine/optim.h"

namespace fs = std::filesystem;

namespace ich::app {

namespace {

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

}  // namespace

std::string ConfigField::flag() const {
  std::string f = std::string("--") + key;
  for (char& c : f)
    if (c == '_') c = '-';
  return f;
}

const std::vector<ConfigField>& config_fields() {
  using C = TrainConfig;
  static const std::vector<ConfigField> fields = {
      {"preset", "paper settings: sokolovskyy or hssayeni (flags still override them)", &C::preset},
      {"data", "a prepared folder (ichseg prepare) or a CT-ICH folder (ct_scans/, masks/)",
       &C::data},
      {"train_split", "split trained on (train, foldK, !foldK, all)", &C::train_split},
      {"val_split", "split validated on", &C::val_split},
      {"only_hemorrhage", "use only slices whose mask is not empty", &C::only_hemorrhage},
      {"split_seed", "CT-ICH folders: seed of the patient split (as ichseg prepare --seed)",
       &C::split_seed},
      {"val_fraction", "CT-ICH folders: fraction of patients validated on", &C::val_fraction},
      {"wl", "CT-ICH folders and NIfTI prediction: window level (HU)", &C::wl},
      {"ww", "CT-ICH folders and NIfTI prediction: window width (HU)", &C::ww},
      {"nonfinite",
       "CT-ICH folders: a scan with NaN/Inf voxels is refused (refuse), or they become 0 HU "
       "(zero) or the scan's finite minimum (min)",
       &C::nonfinite},
      {"width", "U-Net channels of the first level (the paper: 64)", &C::width},
      {"depth", "U-Net pooling levels (the paper: 3)", &C::depth},
      {"drop_rate", "Dropout2d probability (the paper: 0.4)", &C::drop_rate},
      {"bn_momentum", "BatchNorm momentum (the paper: 0.1)", &C::bn_momentum},
      {"device", "cpu, cuda, cuda:N or cuda-emu", &C::device},
      {"epochs", "epochs in the whole run", &C::epochs},
      {"batch", "images per step", &C::batch},
      {"lr", "Adam learning rate", &C::lr},
      {"lr_schedule", "constant, cosine or poly, over all steps of the run", &C::lr_schedule},
      {"weight_decay", "Adam L2 weight decay", &C::weight_decay},
      {"loss", "dice (negative soft Dice), bce, or dice+bce", &C::loss},
      {"patch", "train on square patches of this side; 0 = whole slices", &C::patch},
      {"stride", "patch stride", &C::stride},
      {"negatives_per_positive", "patches: negatives drawn per positive patch (-1 = all)",
       &C::negatives_per_positive},
      {"augment", "flips, rotations, elastic deformation, intensity noise", &C::augment},
      {"seed", "seed of the weights, dropout, data order and augmentation", &C::seed},
      {"val_samples", "validation slices saved each epoch as PNG", &C::val_samples},
      {"distributed",
       "none, sync (gradients averaged over the ranks of mpirun -np N) or async (rank 0 a "
       "parameter server)",
       &C::distributed},
      {"accumulate", "micro-batches of --batch per step, gradients averaged (one process)",
       &C::accumulate},
      {"staleness", "async: reject gradients more than this many updates old (-1: no bound)",
       &C::staleness},
      {"mpi_timeout", "seconds a rank waits for the others before ending the whole job",
       &C::mpi_timeout},
      {"sync_bn",
       "sync: BatchNorm statistics over the samples of all ranks together (synchronised "
       "BatchNorm), not per rank",
       &C::sync_bn},
  };
  return fields;
}

void TrainConfig::validate() const {
  ICH_CHECK(!data.empty(), "no data: pass --data DIR (a prepared folder or a CT-ICH folder)");
  ICH_CHECK(epochs >= 1, "--epochs " << epochs << " must be at least 1");
  ICH_CHECK(batch >= 1, "--batch " << batch << " must be at least 1");
  ICH_CHECK(lr > 0 && std::isfinite(lr), "--lr " << lr << " must be a positive number");
  ICH_CHECK(weight_decay >= 0, "--weight-decay " << weight_decay << " must be >= 0");
  ICH_CHECK(loss == "dice" || loss == "bce" || loss == "dice+bce",
            "--loss '" << loss << "' is not one of dice, bce, dice+bce");
  LrSchedule::parse_kind(lr_schedule);
  ICH_CHECK(patch == 0 || patch >= (1 << depth),
            "--patch " << patch << " is smaller than the 2^depth = " << (1 << depth)
                       << " pixels the U-Net needs (0 = whole slices)");
  ICH_CHECK(patch >= 0, "--patch " << patch << " must be >= 0 (0 = whole slices)");
  ICH_CHECK(stride >= 1, "--stride " << stride << " must be at least 1");
  ICH_CHECK(val_samples >= 0, "--val-samples " << val_samples << " must be >= 0");
  ICH_CHECK(val_fraction > 0 && val_fraction < 1,
            "--val-fraction " << val_fraction << " must be in (0, 1)");
  ICH_CHECK(ww > 0, "--ww " << ww << " must be > 0");
  data::parse_nonfinite_policy(nonfinite);
  ICH_CHECK(distributed == "none" || distributed == "sync" || distributed == "async",
            "--distributed '" << distributed << "' is not one of none, sync, async");
  ICH_CHECK(accumulate >= 1, "--accumulate " << accumulate << " must be at least 1");
  ICH_CHECK(distributed != "async" || accumulate == 1,
            "--accumulate " << accumulate << " is for synchronous training; async workers push "
                            << "the gradient of every batch");
  ICH_CHECK(!sync_bn || distributed == "sync",
            "--sync-bn synchronises BatchNorm over the ranks of a --distributed sync job; this "
            "run is --distributed "
                << distributed << " (drop --sync-bn, or use --distributed sync under mpirun)");
  ICH_CHECK(staleness >= -1, "--staleness " << staleness << " must be >= 0, or -1 for no bound");
  ICH_CHECK(mpi_timeout > 0 && std::isfinite(mpi_timeout),
            "--mpi-timeout " << mpi_timeout << " must be a positive number of seconds");
  Device::parse(device);
  unet().validate();
}

UnetConfig TrainConfig::unet() const {
  UnetConfig c;
  c.width = width;
  c.depth = depth;
  c.drop_rate = static_cast<float>(drop_rate);
  c.bn_momentum = static_cast<float>(bn_momentum);
  return c;
}

std::vector<std::string> preset_names() {
  return {"sokolovskyy", "hssayeni"};
}

void apply_preset(const std::string& name, TrainConfig* c) {
  if (name.empty() || name == "none") return;
  if (name == "sokolovskyy") {
    // The seed paper: whole slices with hemorrhage, Adam 1e-3, batch 4, negative Dice.
    c->patch = 0;
    c->only_hemorrhage = true;
    c->lr = 1e-3;
    c->batch = 4;
    c->loss = "dice";
  } else if (name == "hssayeni") {
    // The ICH paper: 160x160 patches at stride 80, Adam 1e-5, batch 32, BCE, 150 epochs.
    c->patch = 160;
    c->stride = 80;
    c->only_hemorrhage = false;
    c->lr = 1e-5;
    c->batch = 32;
    c->loss = "bce";
    c->epochs = 150;
  } else {
    ICH_FAIL("unknown preset '" << name << "': expected " << join(preset_names(), " or "));
  }
  c->preset = name;
}

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const ConfigField& f : config_fields()) {
    std::visit([&](auto member) { j[f.key] = this->*member; }, f.member);
  }
  return j;
}

TrainConfig TrainConfig::from_json(const nlohmann::json& json, const std::string& what) {
  TrainConfig c;
  c.merge_json(json, what);
  return c;
}

void TrainConfig::merge_json(const nlohmann::json& json, const std::string& what) {
  ICH_CHECK(json.is_object(), what << " must hold a JSON object of settings");
  for (const auto& [key, value] : json.items()) {
    if (key == "info") continue;
    const ConfigField* field = nullptr;
    for (const ConfigField& f : config_fields())
      if (key == f.key) field = &f;
    if (!field) {
      std::vector<std::string> keys;
      for (const ConfigField& f : config_fields()) keys.push_back(f.key);
      ICH_FAIL(what << ": unknown setting '" << key << "' (known: " << join(keys, ", ") << ")");
    }
    std::visit(
        Overloaded{
            [&](std::string TrainConfig::*m) {
              ICH_CHECK(value.is_string(), what << ": '" << key << "' must be a string");
              this->*m = value.get<std::string>();
            },
            [&](bool TrainConfig::*m) {
              ICH_CHECK(value.is_boolean(), what << ": '" << key << "' must be true or false");
              this->*m = value.get<bool>();
            },
            [&](int TrainConfig::*m) {
              ICH_CHECK(value.is_number_integer(), what << ": '" << key << "' must be an integer");
              this->*m = value.get<int>();
            },
            [&](uint64_t TrainConfig::*m) {
              ICH_CHECK(value.is_number_unsigned(),
                        what << ": '" << key << "' must be an integer >= 0");
              this->*m = value.get<uint64_t>();
            },
            [&](double TrainConfig::*m) {
              ICH_CHECK(value.is_number(), what << ": '" << key << "' must be a number");
              this->*m = value.get<double>();
            },
        },
        field->member);
  }
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  ICH_CHECK(in, "cannot open " << path);
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    ICH_FAIL(path << " is not valid JSON: " << e.what());
  }
}

void write_json_file(const std::string& path, const nlohmann::json& json) {
  data::write_file_atomic(path, json.dump(2) + "\n");
}

void add_config_options(CLI::App& app, TrainConfig* flags) {
  for (const ConfigField& f : config_fields()) {
    std::visit(Overloaded{
                   [&](bool TrainConfig::*m) {
                     const std::string names = f.flag() + ",!--no-" + f.flag().substr(2);
                     app.add_flag(names, flags->*m, f.help);
                   },
                   [&](auto m) { app.add_option(f.flag(), flags->*m, f.help); },
               },
               f.member);
  }
}

void apply_given_options(const CLI::App& app, const TrainConfig& flags, TrainConfig* config) {
  for (const ConfigField& f : config_fields()) {
    if (app.get_option(f.flag())->count() == 0) continue;
    std::visit([&](auto m) { config->*m = flags.*m; }, f.member);
  }
}

DataKind data_kind(const std::string& dir) {
  ICH_CHECK(fs::is_directory(dir), "data folder " << dir << " does not exist");
  if (fs::exists(fs::path(dir) / data::kManifestCsv)) return DataKind::prepared;
  if (fs::is_directory(fs::path(dir) / "ct_scans")) return DataKind::ctich;
  ICH_FAIL(dir << " is neither a prepared folder (no " << data::kManifestCsv
               << ") nor a CT-ICH folder (no ct_scans/): run ichseg synth or ichseg prepare "
                  "first");
}

std::shared_ptr<const data::SliceSource> open_slices(const TrainConfig& config,
                                                     const std::string& split,
                                                     bool only_hemorrhage) {
  data::SliceSelection selection;
  selection.split = split;
  selection.only_hemorrhage = only_hemorrhage;
  if (data_kind(config.data) == DataKind::prepared)
    return data::open_prepared(config.data, selection);
  data::CtIchSliceOptions o;
  o.wl = static_cast<float>(config.wl);
  o.ww = static_cast<float>(config.ww);
  o.split.seed = config.split_seed;
  o.split.val_fraction = config.val_fraction;
  o.selection = selection;
  o.scan.nonfinite = data::parse_nonfinite_policy(config.nonfinite);
  return data::open_ctich_slices(config.data, o);
}

}  // namespace ich::app
