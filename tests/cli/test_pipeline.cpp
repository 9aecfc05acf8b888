// The main job end to end on a tiny synthetic set: synth, prepare, train, eval, predict,
// report; the files each command writes and the numbers agreeing between them.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_util.h"
#include "data/image_io.h"
#include "data/nifti.h"
#include "data/prepare.h"
#include "engine/metrics.h"
#include "engine/safetensors.h"

using namespace ich::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream l(line);
    while (std::getline(l, field, ',')) fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

// A .npy file as NumPy writes and reads it (version 1.0, '<f4', C order), parsed here
// independently of apps/npy so that the test checks the format, not our reader.
std::vector<float> read_npy(const std::string& path, std::vector<int64_t>* shape) {
  const std::string bytes = read_text(path);
  REQUIRE(bytes.size() >= 10);
  REQUIRE(bytes.compare(0, 6, "\x93NUMPY") == 0);
  REQUIRE(bytes[6] == 1);
  const size_t header_len = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
  const std::string header = bytes.substr(10, header_len);
  REQUIRE((10 + header_len) % 64 == 0);  // NumPy aligns the data to 64 bytes
  CHECK_THAT(header, Contains("'descr': '<f4'"));
  CHECK_THAT(header, Contains("'fortran_order': False"));
  const size_t open = header.find('(', header.find("'shape'"));
  const size_t close = header.find(')', open);
  std::istringstream dims(header.substr(open + 1, close - open - 1));
  std::string dim;
  shape->clear();
  while (std::getline(dims, dim, ','))
    if (dim.find_first_not_of(' ') != std::string::npos) shape->push_back(std::stoll(dim));
  std::vector<float> values((bytes.size() - 10 - header_len) / 4);
  std::memcpy(values.data(), bytes.data() + 10 + header_len, values.size() * 4);
  return values;
}

}  // namespace

TEST_CASE("cli: train, eval, report and predict on a tiny synthetic set", "[cli]") {
  TempDir dir("pipeline");
  make_tiny_dataset(dir);
  const std::string run = dir / "run";

  const Result train = run_ichseg_ok(tiny_train_args(dir, "run", 2));
  CHECK_THAT(train.out, Contains("epoch 2/2: train loss"));

  // log.csv: the header report.h reads, one row per epoch, values in range.
  const auto log = csv_rows(read_text(run + "/log.csv"));
  REQUIRE(log.size() == 3);
  CHECK(read_text(run + "/log.csv")
            .rfind("epoch,train_loss,val_loss,val_dice,val_jaccard,lr,seconds,images_per_s\n", 0) ==
        0);
  double best_logged = -1;
  for (size_t r = 1; r < log.size(); ++r) {
    REQUIRE(log[r].size() == 8);
    CHECK(std::stoi(log[r][0]) == int(r));
    const double dice = std::stod(log[r][3]), jaccard = std::stod(log[r][4]);
    CHECK(dice >= 0.0);
    CHECK(dice <= 1.0);
    CHECK(jaccard <= dice + 1e-9);  // J = D / (2 - D) per slice, so the means obey J <= D
    CHECK(std::stod(log[r][5]) == Approx(0.01));
    CHECK(std::isfinite(std::stod(log[r][1])));
    best_logged = std::max(best_logged, dice);
  }

  // config.json: the resolved settings.
  const auto config = nlohmann::json::parse(read_text(run + "/config.json"));
  CHECK(config["width"] == 4);
  CHECK(config["seed"] == 5);
  CHECK(config["device"] == "cpu");
  CHECK(config["val_split"] == "val");
  CHECK(config["data"] == dir / "prepared");
  CHECK(config["info"]["val_slices"].get<int>() > 0);

  // Two sample panels per epoch, each three slices wide plus the gaps.
  int panels = 0;
  for (const auto& e : fs::directory_iterator(run + "/samples")) {
    const std::string name = e.path().filename().string();
    CHECK((name.rfind("epoch_001_", 0) == 0 || name.rfind("epoch_002_", 0) == 0));
    const ich::data::Image8 panel = ich::data::read_image(e.path().string());
    CHECK(panel.w == 3 * 64 + 8);
    CHECK(panel.h == 64);
    ++panels;
  }
  CHECK(panels == 4);

  // The best checkpoint remembers the best logged Dice.
  const ich::SafetensorsFile best = ich::load_safetensors(run + "/checkpoints/best.safetensors");
  CHECK(std::stod(best.metadata.at("train.best_dice")) == Approx(best_logged).margin(1e-6));
  CHECK(best.metadata.at("unet.width") == "4");
  CHECK(best.tensors.count("conv1.conv1.weight") == 1);
  CHECK(best.tensors.count("optimizer.conv1.conv1.weight.exp_avg") == 1);

  // eval --run scores the validation split with the best checkpoint, as training did.
  const Result eval =
      run_ichseg_ok({"eval", "--run", run, "--json", run + "/eval.json", "--overlays", "2"});
  for (const char* word : {"Jaccard", "Dice", "sensitivity", "specificity", "ICH protocol"})
    CHECK_THAT(eval.out, Contains(word));
  const auto ev = nlohmann::json::parse(read_text(run + "/eval.json"));
  for (const char* key : {"dice_mean", "jaccard_mean", "sensitivity_mean", "specificity_mean",
                          "ich_protocol", "empty_truth_rule"})
    CHECK(ev.contains(key));
  for (const char* metric : {"dice", "jaccard", "sensitivity", "specificity"})
    for (const char* stat : {"mean", "std", "min", "max", "count"})
      CHECK(ev["table"][metric].contains(stat));
  CHECK(ev["dice_mean"].get<double>() == Approx(best_logged).margin(1e-5));
  CHECK(ev["table"]["dice"]["min"].get<double>() <= ev["dice_mean"].get<double>());
  CHECK(std::distance(fs::directory_iterator(run + "/overlays"), fs::directory_iterator()) == 2);

  // An independent check of eval's table: predict the same validation PNGs, score the masks
  // here, and compare the mean Dice.
  std::vector<std::string> val_images;
  for (const auto& row : ich::data::read_manifest(dir / "prepared/manifest.csv"))
    if (row.split == "val") val_images.push_back(dir / ("prepared/image/" + row.file));
  REQUIRE(!val_images.empty());
  std::vector<std::string> predict_args{"predict"};
  predict_args.insert(predict_args.end(), val_images.begin(), val_images.end());
  for (const char* a : {"--run", "", "--out", "", "--overlays", "none"}) predict_args.push_back(a);
  predict_args[val_images.size() + 2] = run;
  predict_args[val_images.size() + 4] = dir / "pred_png";
  run_ichseg_ok(predict_args);
  double dice_sum = 0;
  for (const std::string& image : val_images) {
    const std::string name = fs::path(image).filename().string();
    const auto mask =
        ich::data::read_image(dir / ("pred_png/" + fs::path(image).stem().string() + "_mask.png"));
    const auto truth = ich::data::read_image(dir / ("prepared/label/" + name));
    std::vector<float> p(mask.pixels.size()), t(truth.pixels.size());
    for (size_t i = 0; i < p.size(); ++i) p[i] = mask.pixels[i] ? 1.0f : 0.0f;
    for (size_t i = 0; i < t.size(); ++i) t[i] = truth.pixels[i] ? 1.0f : 0.0f;
    dice_sum += ich::segmentation_metrics(p.data(), t.data(), p.size()).dice;
  }
  CHECK(dice_sum / val_images.size() == Approx(ev["dice_mean"].get<double>()).margin(1e-9));

  // report: one page with the curves and the eval table.
  const Result report = run_ichseg_ok({"report", run});
  const std::string html = read_text(run + "/report.html");
  CHECK_THAT(html, Contains("<svg"));
  CHECK_THAT(html, Contains("<td>dice</td>"));
  CHECK_THAT(html, Contains("data:image/png;base64,"));

  // predict on a NIfTI volume: a mask with the input's geometry, overlays, probabilities.
  const std::string volume = dir / "ct/ct_scans/001.nii";
  const Result predict = run_ichseg_ok(
      {"predict", volume, "--checkpoint", run + "/checkpoints/best.safetensors", "--out",
       dir / "pred", "--probabilities", dir / "pred/p.npy", "--overlays", "all"});
  CHECK_THAT(predict.out, Contains("s per slice"));
  const ich::data::NiftiHeader in = ich::data::read_nifti_header(volume);
  const ich::data::Volume mask = ich::data::read_nifti(dir / "pred/001_mask.nii");
  CHECK(mask.nx == in.nx);
  CHECK(mask.ny == in.ny);
  CHECK(mask.nz == in.nz);
  for (int i = 0; i < 3; ++i) CHECK(mask.spacing[i] == Approx(in.spacing[i]));
  CHECK(mask.datatype == ich::data::kNiftiUint8);
  std::vector<int64_t> shape;
  const std::vector<float> probs = read_npy(dir / "pred/p.npy", &shape);
  REQUIRE(shape == std::vector<int64_t>{in.nz, in.ny, in.nx});
  size_t disagreements = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    CHECK((probs[i] >= 0.0f && probs[i] <= 1.0f));
    disagreements += (probs[i] >= 0.5f) != (mask.values[i] == 1.0f);
  }
  CHECK(disagreements == 0);
  CHECK(std::distance(fs::directory_iterator(dir / "pred/overlays"), fs::directory_iterator()) ==
        in.nz);
}

TEST_CASE("cli: training on a raw CT-ICH folder uses prepare's patient split", "[cli]") {
  TempDir dir("raw");
  make_tiny_dataset(dir);
  auto args = tiny_train_args(dir, "run", 1);
  args[2] = dir / "ct";  // --data: the NIfTI folder itself
  run_ichseg_ok(args);
  const auto config = nlohmann::json::parse(read_text(dir / "run/config.json"));
  CHECK(config["info"]["data_kind"] == "ctich");
  // The same slices as the prepared folder's val split, so the same validation Dice.
  run_ichseg_ok(tiny_train_args(dir, "run_prepared", 1));
  const auto raw_log = read_text(dir / "run/log.csv");
  const auto prepared_log = read_text(dir / "run_prepared/log.csv");
  CHECK(csv_rows(raw_log)[1][3] == csv_rows(prepared_log)[1][3]);
  CHECK(csv_rows(raw_log)[1][1] == csv_rows(prepared_log)[1][1]);
  CHECK(config["info"]["val_slices"] ==
        nlohmann::json::parse(read_text(dir / "run_prepared/config.json"))["info"]["val_slices"]);
}

TEST_CASE("cli: patch training, whole-slice validation, sliding-window eval", "[cli]") {
  TempDir dir("patch");
  make_tiny_dataset(dir);
  auto args = tiny_train_args(dir, "run", 1);
  for (const char* a : {"--patch", "32", "--stride", "16", "--augment"}) args.push_back(a);
  const Result train = run_ichseg_ok(args);
  const ich::SafetensorsFile last = ich::load_safetensors(dir / "run/checkpoints/last.safetensors");
  CHECK(last.metadata.at("train.patch") == "32");
  // Training validated on whole 64x64 slices, as eval does by default; --tile 32 tiles them.
  const Result whole = run_ichseg({"eval", "--run", dir / "run", "--json", dir / "whole.json"});
  const Result tiled =
      run_ichseg({"eval", "--run", dir / "run", "--tile", "32", "--json", dir / "tiled.json"});
  INFO(whole.out << whole.err << tiled.out << tiled.err);
  REQUIRE(whole.exit_code == 0);
  REQUIRE(tiled.exit_code == 0);
  const auto log = csv_rows(read_text(dir / "run/log.csv"));
  const auto w = nlohmann::json::parse(read_text(dir / "whole.json"));
  const auto t = nlohmann::json::parse(read_text(dir / "tiled.json"));
  CHECK(w["dice_mean"].get<double>() == Approx(std::stod(log[1][3])).margin(1e-5));
  CHECK(t["slices"] == w["slices"]);
  CHECK(t["dice_mean"].get<double>() >= 0.0);
  CHECK(t["dice_mean"].get<double>() <= 1.0);
  // predict uses the training patch as its sliding window on larger inputs by default.
  const Result predict = run_ichseg_ok({"predict", dir / "ct/ct_scans/002.nii", "--run",
                                        dir / "run", "--out", dir / "pred", "--overlays", "none"});
  CHECK_THAT(predict.out, Contains("sliding window 32"));
}
