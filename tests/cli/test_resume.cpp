// Resuming is exact: a run stopped part way (by the --stop-at-step hook or by SIGINT) and
// resumed ends with the same weights and optimiser state, bit for bit on the CPU backend, as
// a run that was never stopped; and logs the same losses.
#include <catch2/catch.hpp>
#include <filesystem>
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

}  // namespace

TEST_CASE("cli: a run stopped mid-epoch and resumed equals an uninterrupted run", "[cli]") {
  TempDir dir("resume");
  make_tiny_dataset(dir);
  // Dropout and augmentation on, so the generators' positions matter too.
  auto args = [&](const std::string& run) {
    auto a = tiny_train_args(dir, run, 3);
    a.push_back("--augment");
    return a;
  };
  const Result whole = run_ichseg(args("whole"));
  INFO(whole.out << whole.err);
  REQUIRE(whole.exit_code == 0);

  // Stopped twice: inside epoch 1, then exactly at the end of epoch 2's steps (before its
  // validation), each time resumed from the last checkpoint.
  auto first = args("parts");
  first.insert(first.end(), {"--stop-at-step", "3"});
  const Result part1 = run_ichseg(first);
  INFO(part1.out << part1.err);
  REQUIRE(part1.exit_code == 0);
  CHECK_THAT(part1.out, Contains("stopped at step 3"));
  const std::string steps_per_epoch =
      ich::load_safetensors(dir / "parts/checkpoints/last.safetensors")
          .metadata.at("train.steps_per_epoch");
  const std::string end_of_epoch2 = std::to_string(2 * std::stoi(steps_per_epoch));
  const Result part2 =
      run_ichseg({"train", "--out", dir / "parts", "--resume", "--stop-at-step", end_of_epoch2});
  INFO(part2.out << part2.err);
  REQUIRE(part2.exit_code == 0);
  CHECK_THAT(part2.out, Contains("resuming after epoch 0 step 3"));
  const Result part3 = run_ichseg({"train", "--out", dir / "parts", "--resume"});
  INFO(part3.out << part3.err);
  REQUIRE(part3.exit_code == 0);

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
  const Result whole = run_ichseg(tiny_train_args(dir, "whole", 6));
  REQUIRE(whole.exit_code == 0);

  // Interrupt as soon as the first progress line shows.
  const Result interrupted = run_ichseg(
      tiny_train_args(dir, "parts", 6),
      [](const std::string& out) { return out.find("epoch 1/6 [") != std::string::npos; });
  INFO(interrupted.out << interrupted.err);
  CHECK(interrupted.signal == 0);  // handled, not killed
  REQUIRE(interrupted.exit_code == 128 + SIGINT);
  CHECK_THAT(interrupted.out, Contains("stopped by SIGINT"));
  CHECK(std::filesystem::exists(dir / "parts/checkpoints/last.safetensors"));

  const Result resumed = run_ichseg({"train", "--out", dir / "parts", "--resume"});
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  require_same_tensors(dir / "whole/checkpoints/last.safetensors",
                       dir / "parts/checkpoints/last.safetensors");
}
