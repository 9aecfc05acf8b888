// What a user gets wrong: bad flags, missing files, a diverging run, a checkpoint of another
// architecture, a folder that already holds a run. Each gives one line on stderr and a
// non-zero exit. And where settings come from: defaults < preset < config file < flags.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"

using namespace ich::test;
using Catch::Matchers::Contains;

namespace {

void require_one_line_error(const Result& r, const std::string& expected) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.signal == 0);
  CHECK(line_count(r.err) == 1);
  CHECK_THAT(r.err, Contains(expected));
}

}  // namespace

TEST_CASE("cli: bad flags and missing files give one line and a non-zero exit", "[cli]") {
  TempDir dir("errors");
  require_one_line_error(run_ichseg({"train", "--data", dir.str(), "--out", dir / "r", "--bogus"}),
                         "--bogus");
  require_one_line_error(run_ichseg({"train", "--data", dir / "missing", "--out", dir / "r"}),
                         dir / "missing");
  require_one_line_error(run_ichseg({"train", "--data", dir.str(), "--out", dir / "r"}),
                         "neither a prepared folder");
  require_one_line_error(
      run_ichseg({"train", "--data", dir.str(), "--out", dir / "r", "--loss", "hinge"}),
      "'hinge' is not one of dice, bce, dice+bce");
  require_one_line_error(
      run_ichseg({"train", "--data", dir.str(), "--out", dir / "r", "--epochs", "many"}),
      "--epochs");
  require_one_line_error(
      run_ichseg({"train", "--data", dir.str(), "--out", dir / "r", "--preset", "nobody"}),
      "unknown preset 'nobody'");
  require_one_line_error(run_ichseg({"train", "--out", dir / "nothing", "--resume"}),
                         "cannot resume");
  require_one_line_error(run_ichseg({"eval", "--run", dir / "no-run"}), "no config.json");
  require_one_line_error(run_ichseg({"eval"}), "nothing to evaluate");
  require_one_line_error(run_ichseg({"predict", dir / "absent.nii", "--checkpoint",
                                     dir / "absent.safetensors", "--out", dir / "p"}),
                         "absent.nii does not exist");
  require_one_line_error(run_ichseg({"report", dir / "no-run"}), "no-run");

  write_text(dir / "bad.json", "{\"lr\": 0.1, \"learning_rate\": 3}");
  require_one_line_error(
      run_ichseg({"train", "--data", dir.str(), "--out", dir / "r", "--config", dir / "bad.json"}),
      "unknown setting 'learning_rate'");
  write_text(dir / "typed.json", "{\"epochs\": \"ten\"}");
  require_one_line_error(run_ichseg({"train", "--data", dir.str(), "--out", dir / "r", "--config",
                                     dir / "typed.json"}),
                         "'epochs' must be an integer");
}

TEST_CASE("cli: a bad ICH_CONV_ALGO gives one line and a non-zero exit", "[cli]") {
  // run_ichseg passes this process's environment on; only the child reads the variable.
  ::setenv("ICH_CONV_ALGO", "fft", 1);
  const Result r = run_ichseg({"info"});
  ::unsetenv("ICH_CONV_ALGO");
  require_one_line_error(r, "ICH_CONV_ALGO is 'fft'; use auto, im2col or winograd");
}

TEST_CASE("cli: a loss that becomes NaN stops the run naming the epoch and step", "[cli]") {
  TempDir dir("nan");
  make_tiny_dataset(dir);
  auto args = tiny_train_args(dir, "run", 2);
  args[12] = "1e38";  // --lr: the first Adam step throws the weights to ~1e38
  REQUIRE(args[11] == "--lr");
  const Result r = run_ichseg(args);
  require_one_line_error(r, "the loss became NaN at epoch 1, step 2 of");
  CHECK_THAT(r.err, Contains("lower --lr"));
}

TEST_CASE("cli: a checkpoint of another architecture is refused", "[cli]") {
  TempDir dir("arch");
  make_tiny_dataset(dir);
  const Result train = run_ichseg_ok(tiny_train_args(dir, "run", 1));
  require_one_line_error(run_ichseg({"eval", "--run", dir / "run", "--width", "8"}),
                         "width 8 vs 4");
  require_one_line_error(
      run_ichseg({"train", "--out", dir / "run", "--resume", "--depth", "2", "--epochs", "2"}),
      "depth 2 vs 3");
  require_one_line_error(run_ichseg({"predict", dir / "ct/ct_scans/001.nii", "--run", dir / "run",
                                     "--out", dir / "p", "--width", "6"}),
                         "different U-Net");
  // A folder that holds a run is not overwritten by a new one.
  require_one_line_error(run_ichseg(tiny_train_args(dir, "run", 1)),
                         "already holds a training run");
}

TEST_CASE("cli: settings come from defaults, preset, config file and flags in that order",
          "[cli]") {
  TempDir dir("config");
  auto resolved = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"train", "--print-config"});
    const Result r = run_ichseg_ok(args);
    return nlohmann::json::parse(r.out);
  };
  const auto defaults = resolved({});
  CHECK(defaults["width"] == 64);  // the paper's U-Net
  CHECK(defaults["depth"] == 3);
  CHECK(defaults["drop_rate"] == 0.4);
  CHECK(defaults["patch"] == 0);

  const auto sokolovskyy = resolved({"--preset", "sokolovskyy"});
  CHECK(sokolovskyy["patch"] == 0);
  CHECK(sokolovskyy["only_hemorrhage"] == true);
  CHECK(sokolovskyy["lr"] == 1e-3);
  CHECK(sokolovskyy["batch"] == 4);
  CHECK(sokolovskyy["loss"] == "dice");

  const auto hssayeni = resolved({"--preset", "hssayeni"});
  CHECK(hssayeni["patch"] == 160);
  CHECK(hssayeni["stride"] == 80);
  CHECK(hssayeni["lr"] == 1e-5);
  CHECK(hssayeni["batch"] == 32);
  CHECK(hssayeni["loss"] == "bce");
  CHECK(hssayeni["epochs"] == 150);

  // The file's preset, then its values, then the flags.
  write_text(dir / "c.json", "{\"preset\": \"hssayeni\", \"batch\": 16, \"epochs\": 3}");
  const auto layered = resolved({"--config", dir / "c.json", "--epochs", "7", "--full-slice"});
  CHECK(layered["preset"] == "hssayeni");
  CHECK(layered["lr"] == 1e-5);   // preset
  CHECK(layered["batch"] == 16);  // file over preset
  CHECK(layered["epochs"] == 7);  // flag over file
  CHECK(layered["patch"] == 0);   // --full-slice
  const auto negated = resolved({"--preset", "sokolovskyy", "--no-only-hemorrhage"});
  CHECK(negated["only_hemorrhage"] == false);
}

TEST_CASE("cli: training on cuda-emu runs the same model", "[cli]") {
  TempDir dir("emu");
  run_ichseg_ok({"synth", "--out", dir / "ct", "--patients", "2", "--size", "16", "--slices", "2",
                 "--slice-jitter", "0", "--healthy-fraction", "0", "--seed", "2"});
  auto args = [&](const std::string& device, const std::string& run) {
    return std::vector<std::string>{"train",   "--data",         dir / "ct", "--out",
                                    dir / run, "--width",        "2",        "--depth",
                                    "2",       "--epochs",       "1",        "--batch",
                                    "2",       "--val-fraction", "0.5",      "--device",
                                    device,    "--val-samples",  "0"};
  };
  const Result cpu = run_ichseg_ok(args("cpu", "cpu"));
  const Result emu = run_ichseg(args("cuda-emu", "emu"));
  INFO(emu.out << emu.err);
  if (emu.exit_code != 0 && emu.err.find("not in this build") != std::string::npos) {
    WARN("cuda-emu is not in this build");
    return;
  }
  REQUIRE(emu.exit_code == 0);
  // The same numbers up to float summation order.
  auto train_loss = [&](const std::string& run) {
    const std::string log = read_text(dir / (run + "/log.csv"));
    const size_t row = log.find('\n') + 1;
    const size_t a = log.find(',', row) + 1;
    return std::stod(log.substr(a, log.find(',', a) - a));
  };
  CHECK(train_loss("emu") == Approx(train_loss("cpu")).epsilon(1e-3));
}
