// Resuming is exact: a run stopped part way (by the --stop-at-step hook or by SIGINT) and
// resumed ends with the same weights and optimiser state, bit for bit on the CPU backend, as
// a run that was never stopped; and logs the same losses. A run folder written by an earlier
// version (its checkpoint metadata and config.json keys, listed here) resumes the same way.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_util.h"
#include "engine/safetensors.h"

using namespace ich::test;
using Catch::Matchers::Contains;

namespace {

// Every tensor of two checkpoints, byte for byte (weights, BatchNorm buffers, Adam state).
void require_same_tensors(const std::string& a_path, const std::string& b_path) {
  const ich::SafetensorsFile a = ich::load_safetensors(a_path);
  const ich::SafetensorsFile b = ich::load_safetensors(b_path);
  REQUIRE(a.tensors.size() == b.tensors.size());
  REQUIRE(a.tensors.size() > 50);
  size_t differing = 0;
  std::string first;
  for (const auto& [name, t] : a.tensors) {
    const auto it = b.tensors.find(name);
    REQUIRE(it != b.tensors.end());
    if (it->second.bytes != t.bytes) {
      if (!differing) first = name;
      ++differing;
    }
  }
  INFO("first differing tensor: " << first);
  CHECK(differing == 0);
  CHECK(a.metadata.at("rng.dropout.offset") == b.metadata.at("rng.dropout.offset"));
  CHECK(a.metadata.at("train.global_step") == b.metadata.at("train.global_step"));
}

// The log without the timing columns.
std::string log_without_times(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line, out;
  while (std::getline(in, line)) {
    // epoch,train_loss,val_loss,val_dice,val_jaccard,lr | ,seconds,images_per_s
    size_t cut = 0;
    for (int commas = 0; commas < 6 && cut != std::string::npos; ++commas)
      cut = line.find(',', cut + (commas ? 1 : 0));
    out += line.substr(0, cut) + "\n";
  }
  return out;
}

// A tiny run of 3 epochs with dropout and augmentation on, so the generators' positions
// matter too.
std::vector<std::string> augmented_run(const TempDir& dir, const std::string& run) {
  auto a = tiny_train_args(dir, run, 3);
  a.push_back("--augment");
  return a;
}

}  // namespace

TEST_CASE("cli: a run stopped mid-epoch and resumed equals an uninterrupted run", "[cli]") {
  TempDir dir("resume");
  make_tiny_dataset(dir);
  const Result whole = run_ichseg_ok(augmented_run(dir, "whole"));

  // Stopped twice: inside epoch 1, then exactly at the end of epoch 2's steps (before its
  // validation), each time resumed from the last checkpoint.
  auto first = augmented_run(dir, "parts");
  first.insert(first.end(), {"--stop-at-step", "3"});
  const Result part1 = run_ichseg_ok(first);
  CHECK_THAT(part1.out, Contains("stopped at step 3"));
  const std::string steps_per_epoch =
      ich::load_safetensors(dir / "parts/checkpoints/last.safetensors")
          .metadata.at("train.steps_per_epoch");
  const std::string end_of_epoch2 = std::to_string(2 * std::stoi(steps_per_epoch));
  const Result part2 =
      run_ichseg_ok({"train", "--out", dir / "parts", "--resume", "--stop-at-step", end_of_epoch2});
  CHECK_THAT(part2.out, Contains("resuming after epoch 0 step 3"));
  run_ichseg_ok({"train", "--out", dir / "parts", "--resume"});

  require_same_tensors(dir / "whole/checkpoints/last.safetensors",
                       dir / "parts/checkpoints/last.safetensors");
  require_same_tensors(dir / "whole/checkpoints/best.safetensors",
                       dir / "parts/checkpoints/best.safetensors");
  CHECK(log_without_times(dir / "whole/log.csv") == log_without_times(dir / "parts/log.csv"));

  // A finished run has nothing left to do.
  const Result again = run_ichseg({"train", "--out", dir / "parts", "--resume"});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Contains("nothing to do"));
}

TEST_CASE("cli: SIGINT writes a checkpoint, exits cleanly, and the run resumes exactly", "[cli]") {
  TempDir dir("sigint");
  make_tiny_dataset(dir);
  const Result whole = run_ichseg_ok(tiny_train_args(dir, "whole", 6));

  // Interrupt as soon as the first progress line shows.
  const Result interrupted = run_ichseg(
      tiny_train_args(dir, "parts", 6),
      [](const std::string& out) { return out.find("epoch 1/6 [") != std::string::npos; });
  INFO(interrupted.out << interrupted.err);
  CHECK(interrupted.signal == 0);  // handled, not killed
  REQUIRE(interrupted.exit_code == 128 + SIGINT);
  CHECK_THAT(interrupted.out, Contains("stopped by SIGINT"));
  CHECK(std::filesystem::exists(dir / "parts/checkpoints/last.safetensors"));

  run_ichseg_ok({"train", "--out", dir / "parts", "--resume"});
  require_same_tensors(dir / "whole/checkpoints/last.safetensors",
                       dir / "parts/checkpoints/last.safetensors");
}

namespace {

// What every ichseg train so far has written into a checkpoint's metadata (the U-Net's own
// entries, the dropout generator, and the training position), and into config.json: the
// format a resume must keep reading.
const std::vector<std::string> kCheckpointKeys = {"model",
                                                  "unet.in_channels",
                                                  "unet.width",
                                                  "unet.depth",
                                                  "unet.drop_rate",
                                                  "unet.bn_momentum",
                                                  "rng.dropout.seed",
                                                  "rng.dropout.offset",
                                                  "ichseg.config",
                                                  "data.wl",
                                                  "data.ww",
                                                  "train.patch",
                                                  "train.loader_seed",
                                                  "train.steps_per_epoch",
                                                  "train.shards",
                                                  "train.ranks",
                                                  "train.distributed",
                                                  "train.sync_bn",
                                                  "train.epochs_done",
                                                  "train.step_in_epoch",
                                                  "train.global_step",
                                                  "train.best_dice",
                                                  "train.best_epoch",
                                                  "train.epoch_loss_sum",
                                                  "train.epoch_images",
                                                  "train.epoch_tp",
                                                  "train.epoch_fp",
                                                  "train.epoch_fn"};
const std::vector<std::string> kConfigKeys = {"preset",
                                              "data",
                                              "train_split",
                                              "val_split",
                                              "only_hemorrhage",
                                              "split_seed",
                                              "val_fraction",
                                              "wl",
                                              "ww",
                                              "width",
                                              "depth",
                                              "drop_rate",
                                              "bn_momentum",
                                              "device",
                                              "epochs",
                                              "batch",
                                              "lr",
                                              "lr_schedule",
                                              "weight_decay",
                                              "loss",
                                              "patch",
                                              "stride",
                                              "negatives_per_positive",
                                              "augment",
                                              "seed",
                                              "val_samples",
                                              "distributed",
                                              "accumulate",
                                              "staleness",
                                              "mpi_timeout",
                                              "sync_bn"};

// Keeps exactly `keys` of a JSON object (each must be there), and "info" when asked.
nlohmann::json only_keys(const nlohmann::json& j, const std::vector<std::string>& keys) {
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& k : keys) {
    INFO("key " << k);
    REQUIRE(j.contains(k));
    out[k] = j[k];
  }
  return out;
}

// Rewrites a safetensors file with its metadata cut to `keys`; the tensor bytes stay as they
// are (the header is u64 length + JSON; offsets count from the end of the header).
void keep_metadata(const std::string& path, const std::vector<std::string>& keys) {
  const std::string bytes = read_text(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  header["__metadata__"] = only_keys(header["__metadata__"], keys);
  const std::string text = header.dump();
  const uint64_t m = text.size();
  std::string out(reinterpret_cast<const char*>(&m), 8);
  write_text(path, out + text + bytes.substr(8 + n));
}

}  // namespace

TEST_CASE("cli: a run folder in the layout of earlier versions resumes exactly", "[cli]") {
  TempDir dir("layout");
  make_tiny_dataset(dir);
  run_ichseg_ok(augmented_run(dir, "whole"));
  auto first = augmented_run(dir, "parts");
  first.insert(first.end(), {"--stop-at-step", "3"});
  run_ichseg_ok(first);

  // The run folder as the earlier versions wrote it: nothing in the checkpoint or in
  // config.json but what they wrote (and all of that is still written).
  const std::string last = dir / "parts/checkpoints/last.safetensors";
  keep_metadata(last, kCheckpointKeys);
  REQUIRE(ich::load_safetensors(last).metadata.size() == kCheckpointKeys.size());
  const nlohmann::json config = nlohmann::json::parse(read_text(dir / "parts/config.json"));
  nlohmann::json old_config = only_keys(config, kConfigKeys);
  old_config["info"] = config.at("info");
  write_text(dir / "parts/config.json", old_config.dump(2) + "\n");
  const ich::SafetensorsFile saved = ich::load_safetensors(last);
  // The checkpoint's own copy is today's: the keys above and those added since (nonfinite).
  CHECK(nlohmann::json::parse(saved.metadata.at("ichseg.config")).size() == kConfigKeys.size() + 1);

  const Result resumed = run_ichseg_ok({"train", "--out", dir / "parts", "--resume"});
  CHECK_THAT(resumed.out, Contains("resuming after epoch 0 step 3"));
  require_same_tensors(dir / "whole/checkpoints/last.safetensors", last);
  require_same_tensors(dir / "whole/checkpoints/best.safetensors",
                       dir / "parts/checkpoints/best.safetensors");
  CHECK(log_without_times(dir / "whole/log.csv") == log_without_times(dir / "parts/log.csv"));
}
