// ichseg predict INPUT... --run RUN_DIR | --checkpoint FILE --out DIR: hemorrhage masks for
// NIfTI volumes or DICOM series folders (a NIfTI mask with the input's geometry) or
// PNG/JPEG/BMP slices (PNG masks), overlay PNGs, and optionally the probabilities as a NumPy
// .npy file.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "apps/figures.h"
#include "apps/npy.h"
#include "apps/predictor.h"
#include "apps/run_folder.h"
#include "apps/scan_input.h"
#include "core/error.h"
#include "data/image_io.h"
#include "data/nifti.h"
#include "data/window.h"

namespace fs = std::filesystem;

namespace {

using namespace ich::app;
using Clock = std::chrono::steady_clock;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A NIfTI volume or a folder of DICOM files (apps/scan_input.h).
bool is_volume(const std::string& path) {
  return is_scan_input(path);
}

// "049" for "dir/049.nii.gz" and the DICOM folder "dir/049/"
std::string stem_of(const std::string& path) {
  if (is_volume(path)) return scan_stem(path);
  std::string name = fs::path(path).filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".bmp"})
    if (ends_with(name, ext)) return name.substr(0, name.size() - std::string(ext).size());
  return fs::path(name).stem().string();
}

// The flags of `ichseg predict`.
struct PredictFlags {
  std::vector<std::string> inputs;
  std::string run_dir, checkpoint, out_dir, device_name = "cpu", probabilities,
                                            overlays = "positive";
  ArchitectureFlags architecture;
  float wl = NAN, ww = NAN;
  InferenceOptions io;
  ScanFlags scan;

  PredictFlags() { io.tile = -1; }
  void add_to(CLI::App& app);
  void check();
};

void PredictFlags::add_to(CLI::App& app) {
  app.add_option("inputs", inputs,
                 "NIfTI volumes (.nii, .nii.gz), folders of DICOM series, or PNG/JPEG/BMP slices")
      ->required();
  app.add_option("--run", run_dir, "a training run (uses RUN/checkpoints/best.safetensors)");
  app.add_option("--checkpoint", checkpoint, "a checkpoint file");
  app.add_option("--out", out_dir, "output folder (created)")->required();
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or cuda-emu")->capture_default_str();
  app.add_option("--tile", io.tile,
                 "sliding-window side; 0 = whole slices (default: the training patch)");
  app.add_option("--overlap", io.overlap, "sliding-window overlap in [0, 1)")
      ->capture_default_str();
  app.add_option("--batch", io.batch, "slices (or tiles) per forward pass")->capture_default_str();
  app.add_option("--probabilities", probabilities,
                 "also write the probabilities to this .npy file (float32; (slices, h, w))");
  app.add_option("--overlays", overlays,
                 "overlay PNGs of: positive (slices with a prediction), all, none")
      ->capture_default_str();
  app.add_option("--wl", wl, "window level for NIfTI input (default: the model's)");
  app.add_option("--ww", ww, "window width for NIfTI input (default: the model's)");
  architecture.add_to(app);
  scan.add_to(app);
}

void PredictFlags::check() {
  ICH_CHECK(!run_dir.empty() || !checkpoint.empty(),
            "no model: pass --run RUN_DIR or --checkpoint FILE");
  if (checkpoint.empty()) checkpoint = RunFolder(run_dir).best_checkpoint().string();
  ICH_CHECK(overlays == "positive" || overlays == "all" || overlays == "none",
            "--overlays '" << overlays << "' is not one of positive, all, none");
  for (const std::string& in : inputs)
    ICH_CHECK(fs::is_regular_file(in) || fs::is_directory(in), "input " << in << " does not exist");
  const bool any_nifti =
      std::any_of(inputs.begin(), inputs.end(), [](const std::string& p) { return is_volume(p); });
  ICH_CHECK(probabilities.empty() || inputs.size() == 1 || !any_nifti,
            "--probabilities takes one NIfTI volume, or PNG slices of one size");
}

// An input's slices (n, h, w) in [0, 1]: a NIfTI volume or DICOM series (kept in *scan)
// windowed and quantised to 8 bits exactly as `ichseg prepare` writes the training slices, or
// one 8-bit image.
std::vector<float> read_input(const std::string& in, const ich::data::ScanOptions& scan_options,
                              float wl, float ww, ich::data::Scan* scan, int* n, int* h, int* w) {
  std::vector<float> images;
  if (is_volume(in)) {
    *scan = ich::data::read_scan(in, scan_options);
    const ich::data::Volume& v = scan->volume;
    *n = v.nz, *h = v.ny, *w = v.nx;
    std::vector<uint8_t> windowed(v.values.size());
    ich::data::window_to_u8(v.values.data(), int64_t(v.values.size()), wl, ww, windowed.data());
    images.resize(windowed.size());
    for (size_t i = 0; i < windowed.size(); ++i) images[i] = windowed[i] / 255.0f;
  } else {
    const ich::data::Image8 image = ich::data::read_image(in);
    *n = 1, *h = image.h, *w = image.w;
    images.resize(image.pixels.size());
    for (size_t i = 0; i < images.size(); ++i) images[i] = image.pixels[i] / 255.0f;
  }
  return images;
}

// What reading a scan decided that the user should know: the series, the allow_* notes, and
// non-finite voxels replaced under --nonfinite.
void report_scan(const ich::data::Scan& scan) {
  if (scan.dicom) std::printf("  series %s\n", scan.series_uid.c_str());
  for (const std::string& note : scan.notes) std::printf("  note: %s\n", note.c_str());
  if (scan.volume.nonfinite > 0)
    std::printf("  %lld non-finite voxels replaced by %g HU (--nonfinite)\n",
                static_cast<long long>(scan.volume.nonfinite), scan.replaced_with);
}

// The mask of input `in` (NIfTI with the input's geometry, or PNG) and its overlays; returns
// the mask's path and counts the slices with a prediction.
std::string write_outputs(const PredictFlags& f, const std::string& in, const ich::data::Scan& scan,
                          const float* images, const std::vector<float>& probs, int n, int h, int w,
                          int64_t* positive_slices) {
  const std::string stem = stem_of(in);
  const size_t plane = size_t(h) * w;
  std::vector<uint8_t> mask(probs.size());
  for (size_t i = 0; i < probs.size(); ++i) mask[i] = probs[i] >= 0.5f ? 1 : 0;
  for (int k = 0; k < n; ++k) {
    const uint8_t* m = mask.data() + k * plane;
    const bool positive = std::any_of(m, m + plane, [](uint8_t v) { return v != 0; });
    *positive_slices += positive;
    if (f.overlays == "all" || (f.overlays == "positive" && positive)) {
      char name[32];
      std::snprintf(name, sizeof name, is_volume(in) ? "_%03d.png" : ".png", k + 1);
      write_rgb_png((fs::path(f.out_dir) / "overlays" / (stem + name)).string(),
                    overlay_rgb(images + k * plane, m, nullptr, h, w), h, w);
    }
  }
  if (is_volume(in)) return write_scan_mask(f.out_dir, scan, mask.data());
  ich::data::Image8 png;
  png.w = w, png.h = h;
  png.pixels.resize(plane);
  for (size_t i = 0; i < plane; ++i) png.pixels[i] = mask[i] ? 255 : 0;
  const std::string written = (fs::path(f.out_dir) / (stem + "_mask.png")).string();
  ich::data::write_png(written, png);
  return written;
}

int run_predict(int argc, char** argv) {
  CLI::App app{"Predict hemorrhage masks for NIfTI volumes or PNG slices", "ichseg predict"};
  PredictFlags f;
  f.add_to(app);
  if (const int code = parse_command_line(app, argc, argv); code >= 0) return code;
  f.check();
  const ich::Device device = ich::Device::parse(f.device_name);
  LoadedModel model = f.architecture.load(f.checkpoint, device);
  InferenceOptions io = f.io;
  if (io.tile < 0) io.tile = model.patch;
  const float wl = std::isnan(f.wl) ? model.wl : f.wl, ww = std::isnan(f.ww) ? model.ww : f.ww;
  fs::create_directories(f.out_dir);
  if (f.overlays != "none") fs::create_directories(fs::path(f.out_dir) / "overlays");

  double predict_seconds = 0.0;
  int64_t slices = 0;
  std::vector<float> all_probs;  // for --probabilities
  std::vector<int64_t> probs_shape;
  int last_h = 0, last_w = 0;
  const ich::data::ScanOptions scan_options = f.scan.options();
  for (const std::string& in : f.inputs) {
    int n = 0, h = 0, w = 0;
    ich::data::Scan scan;
    const std::vector<float> images = read_input(in, scan_options, wl, ww, &scan, &n, &h, &w);
    const auto start = Clock::now();
    const std::vector<float> probs = predict_images(*model.net, device, images.data(), n, h, w, io);
    predict_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    slices += n;
    last_h = h, last_w = w;
    int64_t positive_slices = 0;
    const std::string written =
        write_outputs(f, in, scan, images.data(), probs, n, h, w, &positive_slices);
    std::printf("%s: %d slice(s) %dx%d, %lld with hemorrhage predicted -> %s\n", in.c_str(), n, w,
                h, static_cast<long long>(positive_slices), written.c_str());
    report_scan(scan);
    if (!f.probabilities.empty()) {
      ICH_CHECK(probs_shape.empty() || (probs_shape[1] == h && probs_shape[2] == w),
                "--probabilities: " << in << " is " << w << "x" << h << ", the first input "
                                    << probs_shape[2] << "x" << probs_shape[1]);
      if (probs_shape.empty()) probs_shape = {0, h, w};
      probs_shape[0] += n;
      all_probs.insert(all_probs.end(), probs.begin(), probs.end());
    }
  }
  if (!f.probabilities.empty()) {
    write_npy_f32(f.probabilities, probs_shape, all_probs.data());
    std::printf("wrote %s (float32, %lld x %lld x %lld)\n", f.probabilities.c_str(),
                static_cast<long long>(probs_shape[0]), static_cast<long long>(probs_shape[1]),
                static_cast<long long>(probs_shape[2]));
  }
  std::printf("predicted %lld slice(s) (last %dx%d) in %.2f s: %.3f s per slice on %s%s\n",
              static_cast<long long>(slices), last_w, last_h, predict_seconds,
              predict_seconds / double(std::max<int64_t>(1, slices)), device.str().c_str(),
              io.tile > 0 ? (", sliding window " + std::to_string(io.tile)).c_str() : "");
  return 0;
}

}  // namespace

ICH_COMMAND("predict", "hemorrhage masks, overlays and probabilities for NIfTI or PNG input",
            run_predict);
