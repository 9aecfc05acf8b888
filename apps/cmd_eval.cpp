// ichseg eval --run RUN_DIR | --checkpoint FILE --data DIR: scores a trained U-Net on a split
// (apps/evaluation.h): the per-image table and the ICH paper's protocol, as text and --json.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "apps/evaluation.h"
#include "apps/figures.h"
#include "apps/predictor.h"
#include "apps/train_config.h"
#include "core/error.h"

namespace fs = std::filesystem;

namespace {

using namespace ich::app;

int run_eval(int argc, char** argv) {
  CLI::App app{
      "Score a trained U-Net: Jaccard, Dice, sensitivity, specificity per image, and "
      "the ICH paper's per-patient Dice and slice detection",
      "ichseg eval"};
  std::string run_dir, checkpoint, data_dir, split, device_name, json_path, overlays_dir;
  int batch = 0, width = 0, depth = 0, overlays = 0;
  bool only_hemorrhage = false, all_slices = false;
  InferenceOptions io;
  EvalOptions eo;
  app.add_option("--run", run_dir,
                 "a training run: its best checkpoint, data, validation split and settings");
  app.add_option("--checkpoint", checkpoint,
                 "a checkpoint (default RUN/checkpoints/best.safetensors)");
  app.add_option("--data", data_dir, "prepared or CT-ICH folder (default: the run's)");
  app.add_option("--split", split,
                 "split to score: val, train, foldK, all (default: the run's "
                 "validation split; all without --run)");
  app.add_flag("--only-hemorrhage", only_hemorrhage, "score only slices with hemorrhage");
  app.add_flag("--all-slices", all_slices,
               "score every slice of the split, also when the run used only slices with "
               "hemorrhage");
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or cuda-emu (default: the run's)");
  app.add_option("--batch", batch, "slices per forward pass (default: the run's batch)");
  app.add_option("--tile", io.tile,
                 "sliding-window side (default 0: whole slices, as training validates)");
  app.add_option("--overlap", io.overlap, "sliding-window overlap in [0, 1)")
      ->capture_default_str();
  app.add_option("--detection-pixels", eo.detection_pixels,
                 "a slice is called positive when more pixels than this are predicted")
      ->capture_default_str();
  app.add_option("--closing", eo.closing, "post-processing: closing radius in pixels (0 = none)");
  app.add_option("--opening", eo.opening, "post-processing: opening radius in pixels (0 = none)");
  app.add_option("--json", json_path, "write the table and the protocol as JSON to this file");
  app.add_option("--overlays", overlays, "write this many overlay PNGs (RUN/overlays/)");
  app.add_option("--overlays-dir", overlays_dir, "folder for --overlays (default RUN/overlays)");
  app.add_option("--width", width, "U-Net width, for checkpoints without ichseg metadata");
  app.add_option("--depth", depth, "U-Net depth, for checkpoints without ichseg metadata");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e);
  }
  ICH_CHECK(!run_dir.empty() || (!checkpoint.empty() && !data_dir.empty()),
            "nothing to evaluate: pass --run RUN_DIR, or --checkpoint FILE and --data DIR");
  ICH_CHECK(eo.detection_pixels >= 0 && eo.closing >= 0 && eo.opening >= 0 && overlays >= 0,
            "--detection-pixels, --closing, --opening and --overlays must be >= 0");

  TrainConfig config;
  if (!run_dir.empty()) {
    const fs::path saved = fs::path(run_dir) / "config.json";
    ICH_CHECK(fs::exists(saved), run_dir << " has no config.json: is it the --out folder of "
                                            "ichseg train?");
    apply_config_json(read_json_file(saved.string()), saved.string(), &config);
    if (checkpoint.empty())
      checkpoint = (fs::path(run_dir) / "checkpoints" / "best.safetensors").string();
    if (split.empty()) split = config.val_split;
    if (overlays_dir.empty()) overlays_dir = (fs::path(run_dir) / "overlays").string();
  } else {
    config.batch = 4;
    if (split.empty()) split = "all";
  }
  ICH_CHECK(overlays == 0 || !overlays_dir.empty(), "--overlays needs --run or --overlays-dir");
  if (!data_dir.empty()) config.data = data_dir;
  if (!device_name.empty()) config.device = device_name;
  if (batch > 0) config.batch = batch;
  const bool hemorrhage_only = !all_slices && (only_hemorrhage || config.only_hemorrhage);
  const ich::Device device = ich::Device::parse(config.device);

  ich::UnetConfig architecture;
  const bool override_architecture = width > 0 || depth > 0;
  if (override_architecture) {
    architecture = config.unet();
    if (width > 0) architecture.width = width;
    if (depth > 0) architecture.depth = depth;
  }
  LoadedModel model =
      load_model(checkpoint, device, override_architecture ? &architecture : nullptr);
  io.batch = config.batch;
  if (run_dir.empty()) {
    // Raw CT-ICH data is windowed as the model was trained.
    config.wl = model.wl;
    config.ww = model.ww;
  }

  const auto source = open_slices(config, split, hemorrhage_only);
  const std::vector<size_t> shown = pick_display_slices(*source, overlays);
  if (!shown.empty()) fs::create_directories(overlays_dir);

  const auto start = std::chrono::steady_clock::now();
  std::vector<SliceScore> scores;
  ich::data::Image8 image, mask;
  size_t i = 0;
  while (i < source->size()) {
    std::vector<float> images, truths;  // (n, h, w)
    std::vector<size_t> ids;
    int h = 0, w = 0;
    while (i < source->size() && int(ids.size()) < config.batch) {
      source->load(i, &image, &mask);
      if (!ids.empty() && (image.w != w || image.h != h)) break;
      w = image.w;
      h = image.h;
      for (uint8_t v : image.pixels) images.push_back(v / 255.0f);
      for (uint8_t v : mask.pixels) truths.push_back(v ? 1.0f : 0.0f);
      ids.push_back(i++);
    }
    const int n = static_cast<int>(ids.size());
    const std::vector<float> probs = predict_images(*model.net, device, images.data(), n, h, w, io);
    const size_t plane = size_t(h) * w;
    for (int k = 0; k < n; ++k) {
      std::vector<uint8_t> predicted;
      scores.push_back(score_slice(source->id(ids[k]), probs.data() + k * plane,
                                   truths.data() + k * plane, h, w, eo, &predicted));
      if (std::binary_search(shown.begin(), shown.end(), ids[k])) {
        std::vector<uint8_t> truth(plane);
        for (size_t p = 0; p < plane; ++p) truth[p] = truths[k * plane + p] >= 0.5f;
        write_rgb_png(
            (fs::path(overlays_dir) / (fs::path(source->id(ids[k]).name).stem().string() + ".png"))
                .string(),
            overlay_rgb(images.data() + k * plane, predicted.data(), truth.data(), h, w), h, w);
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const EvalReport report = evaluate(scores, eo);
  std::printf(
      "ichseg eval: %s on %s, split '%s'%s: %zu slices in %.1f s (%.3f s per slice) on %s\n",
      checkpoint.c_str(), config.data.c_str(), split.c_str(),
      hemorrhage_only ? " (slices with hemorrhage)" : "", scores.size(), seconds,
      seconds / double(std::max<size_t>(1, scores.size())), device.str().c_str());
  std::fputs(format_eval(report).c_str(), stdout);
  if (!json_path.empty()) {
    nlohmann::json j = eval_to_json(report);
    j["checkpoint"] = checkpoint;
    j["data"] = config.data;
    j["split"] = split;
    j["only_hemorrhage"] = hemorrhage_only;
    j["seconds"] = seconds;
    write_json_file(json_path, j);
    std::printf("wrote %s\n", json_path.c_str());
  }
  if (!shown.empty()) std::printf("wrote %zu overlays to %s\n", shown.size(), overlays_dir.c_str());
  return 0;
}

}  // namespace

ICH_COMMAND("eval", "score a trained U-Net (per-image table, ICH protocol, --json)", run_eval);
