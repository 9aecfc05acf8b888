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
#include "apps/run_folder.h"
#include "apps/train_config.h"
#include "core/error.h"

namespace fs = std::filesystem;

namespace {

using namespace ich::app;

// The flags of `ichseg eval`.
struct EvalFlags {
  std::string run_dir, checkpoint, data_dir, split, device_name, json_path, overlays_dir;
  int batch = 0, overlays = 0;
  bool only_hemorrhage = false, all_slices = false;
  ArchitectureFlags architecture;
  InferenceOptions io;
  EvalOptions eo;

  void add_to(CLI::App& app);
};

void EvalFlags::add_to(CLI::App& app) {
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
  architecture.add_to(app);
}

// The settings of the evaluation: the run's (when --run) with the flags given over them.
TrainConfig resolve(EvalFlags* f) {
  TrainConfig config;
  if (!f->run_dir.empty()) {
    const RunFolder run(f->run_dir);
    ICH_CHECK(fs::exists(run.config_json()), f->run_dir << " has no config.json: is it the --out "
                                                           "folder of ichseg train?");
    config = run.read_config();
    if (f->checkpoint.empty()) f->checkpoint = run.best_checkpoint().string();
    if (f->split.empty()) f->split = config.val_split;
    if (f->overlays_dir.empty()) f->overlays_dir = run.overlays().string();
  } else {
    config.batch = 4;
    if (f->split.empty()) f->split = "all";
  }
  ICH_CHECK(f->overlays == 0 || !f->overlays_dir.empty(),
            "--overlays needs --run or --overlays-dir");
  if (!f->data_dir.empty()) config.data = f->data_dir;
  if (!f->device_name.empty()) config.device = f->device_name;
  if (f->batch > 0) config.batch = f->batch;
  return config;
}

// Scores every slice of source, `batch` slices of one size per forward pass, and writes the
// overlays of the `shown` slices into overlays_dir.
std::vector<SliceScore> score_slices(ich::Unet& net, const ich::Device& device,
                                     const ich::data::SliceSource& source, int batch,
                                     const InferenceOptions& io, const EvalOptions& eo,
                                     const std::vector<size_t>& shown,
                                     const std::string& overlays_dir) {
  std::vector<SliceScore> scores;
  ich::data::Image8 image, mask;
  size_t i = 0;
  while (i < source.size()) {
    std::vector<float> images, truths;  // (n, h, w)
    std::vector<size_t> ids;
    int h = 0, w = 0;
    while (i < source.size() && int(ids.size()) < batch) {
      source.load(i, &image, &mask);
      if (!ids.empty() && (image.w != w || image.h != h)) break;
      w = image.w;
      h = image.h;
      for (uint8_t v : image.pixels) images.push_back(v / 255.0f);
      for (uint8_t v : mask.pixels) truths.push_back(v ? 1.0f : 0.0f);
      ids.push_back(i++);
    }
    const int n = static_cast<int>(ids.size());
    const std::vector<float> probs = predict_images(net, device, images.data(), n, h, w, io);
    const size_t plane = size_t(h) * w;
    for (int k = 0; k < n; ++k) {
      std::vector<uint8_t> predicted;
      scores.push_back(score_slice(source.id(ids[k]), probs.data() + k * plane,
                                   truths.data() + k * plane, h, w, eo, &predicted));
      if (!std::binary_search(shown.begin(), shown.end(), ids[k])) continue;
      std::vector<uint8_t> truth(plane);
      for (size_t p = 0; p < plane; ++p) truth[p] = truths[k * plane + p] >= 0.5f;
      write_rgb_png(
          (fs::path(overlays_dir) / (fs::path(source.id(ids[k]).name).stem().string() + ".png"))
              .string(),
          overlay_rgb(images.data() + k * plane, predicted.data(), truth.data(), h, w), h, w);
    }
  }
  return scores;
}

int run_eval(int argc, char** argv) {
  CLI::App app{
      "Score a trained U-Net: Jaccard, Dice, sensitivity, specificity per image, and "
      "the ICH paper's per-patient Dice and slice detection",
      "ichseg eval"};
  EvalFlags f;
  f.add_to(app);
  if (const int code = parse_command_line(app, argc, argv); code >= 0) return code;
  ICH_CHECK(!f.run_dir.empty() || (!f.checkpoint.empty() && !f.data_dir.empty()),
            "nothing to evaluate: pass --run RUN_DIR, or --checkpoint FILE and --data DIR");
  ICH_CHECK(f.eo.detection_pixels >= 0 && f.eo.closing >= 0 && f.eo.opening >= 0 && f.overlays >= 0,
            "--detection-pixels, --closing, --opening and --overlays must be >= 0");
  TrainConfig config = resolve(&f);
  const bool hemorrhage_only = !f.all_slices && (f.only_hemorrhage || config.only_hemorrhage);
  const ich::Device device = ich::Device::parse(config.device);
  LoadedModel model = f.architecture.load(f.checkpoint, device, config.unet());
  f.io.batch = config.batch;
  if (f.run_dir.empty()) {
    // Raw CT-ICH data is windowed as the model was trained.
    config.wl = model.wl;
    config.ww = model.ww;
  }

  const auto source = open_slices(config, f.split, hemorrhage_only);
  const std::vector<size_t> shown = pick_display_slices(*source, f.overlays);
  if (!shown.empty()) fs::create_directories(f.overlays_dir);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<SliceScore> scores =
      score_slices(*model.net, device, *source, config.batch, f.io, f.eo, shown, f.overlays_dir);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const EvalReport report = evaluate(scores, f.eo);
  std::printf(
      "ichseg eval: %s on %s, split '%s'%s: %zu slices in %.1f s (%.3f s per slice) on %s\n",
      f.checkpoint.c_str(), config.data.c_str(), f.split.c_str(),
      hemorrhage_only ? " (slices with hemorrhage)" : "", scores.size(), seconds,
      seconds / double(std::max<size_t>(1, scores.size())), device.str().c_str());
  std::fputs(format_eval(report).c_str(), stdout);
  if (!f.json_path.empty()) {
    nlohmann::json j = eval_to_json(report);
    j["checkpoint"] = f.checkpoint;
    j["data"] = config.data;
    j["split"] = f.split;
    j["only_hemorrhage"] = hemorrhage_only;
    j["seconds"] = seconds;
    write_json_file(f.json_path, j);
    std::printf("wrote %s\n", f.json_path.c_str());
  }
  if (!shown.empty())
    std::printf("wrote %zu overlays to %s\n", shown.size(), f.overlays_dir.c_str());
  return 0;
}

}  // namespace

ICH_COMMAND("eval", "score a trained U-Net (per-image table, ICH protocol, --json)", run_eval);
