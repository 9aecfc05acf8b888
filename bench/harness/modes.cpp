#include "bench/harness/modes.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "bench/harness/machine.h"
#include "core/error.h"
#include "data/fileutil.h"
#include "kernels/backend.h"

namespace ich::bench {

namespace {

int given_or(int given, int fallback) {
  return given > 0 ? given : fallback;
}

BenchResult run_logged(const BenchConfig& c, const Options& o, const std::string& what) {
  std::printf("  %-48s ", what.c_str());
  std::fflush(stdout);
  BenchResult r = run_measurement(c, o.timeout_s);
  if (r.ok)
    std::printf("%.4g s/step, peak RSS %.0f MiB\n", r.median_step_s(), r.max_rss_bytes / kMiB);
  else
    std::printf("failed: %s\n", r.error.c_str());
  std::fflush(stdout);
  return r;
}

}  // namespace

StepSettings Options::resolve(const StepSettings& full, const StepSettings& quick_run) const {
  const StepSettings& d = quick ? quick_run : full;
  StepSettings s;
  s.width = given_or(given.width, d.width);
  s.size = given_or(given.size, d.size);
  s.batch = given_or(given.batch, d.batch);
  s.steps = given_or(given.steps, d.steps);
  s.epoch_images = given_or(given.epoch_images, d.epoch_images);
  return s;
}

std::vector<std::string> Options::devices_or(std::vector<std::string> fallback) const {
  return devices.empty() ? fallback : devices;
}

const std::vector<std::string>& mode_names() {
  static const std::vector<std::string> names = {"epoch", "sweep", "threads", "allocator"};
  return names;
}

ModeOutput run_mode(const std::string& mode, const Options& o) {
  if (mode == "epoch") return bench_epoch(o);
  if (mode == "sweep") return bench_sweep(o);
  if (mode == "threads") return bench_threads(o);
  ICH_CHECK(mode == "allocator", "unknown benchmark mode '" << mode << "'");
  return bench_allocator(o);
}

void write_mode_files(const ModeOutput& m, const Options& o, const std::string& load_before) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  ICH_CHECK(!ec && fs::is_directory(o.out_dir),
            "cannot create the output folder " << o.out_dir << ": " << ec.message());
  const std::string base = (fs::path(o.out_dir) / m.mode).string();
  std::ostringstream md;
  md << "## " << m.title << "\n\n"
     << "Command: `" << o.command_line << "`  \n"
     << "Measured " << utc_now() << " on " << online_cpus() << " CPUs; load average (1, 5, 15 min) "
     << load_before << " before, " << load_average() << " after. Every configuration ran "
     << o.rounds
     << (o.rounds > 1 ? " times, alternating with the others; a row is its median round"
                      : " time (--rounds N to repeat)")
     << ".\n\n"
     << to_markdown(m.table) << "\n"
     << m.notes << "\n";
  data::write_file_atomic(base + ".csv", to_csv(m.table));
  data::write_file_atomic(base + ".md", md.str());
  data::write_file_atomic(base + ".svg", m.svg + "\n");
  std::printf("wrote %s.csv, %s.md, %s.svg\n", base.c_str(), base.c_str(), base.c_str());
}

bool is_cuda(const std::string& device) {
  return Device::parse(device).kind == DeviceKind::cuda;
}

bool is_emu(const std::string& device) {
  return Device::parse(device).kind == DeviceKind::cuda_emu;
}

std::string unavailable(const std::string& device) {
  const Device d = Device::parse(device);
  if (backend_available(d)) return "";
  if (d.kind == DeviceKind::cuda) {
#ifdef ICH_HAVE_CUDA
    return kNoGpu;
#else
    return std::string(kNoGpu) + " (and this build has no cuda backend)";
#endif
  }
  return "not measured: this build has no " + d.str() + " backend";
}

std::string measured_status(const std::string& device) {
  return is_emu(device) ? kEmulated : kMeasured;
}

size_t AlternatingRuns::add(const BenchConfig& config, const std::string& label) {
  configs_.push_back({config, label});
  return configs_.size() - 1;
}

void AlternatingRuns::run(const Options& o) {
  results_.assign(configs_.size(), {});
  for (int round = 1; round <= o.rounds; ++round)
    for (size_t i = 0; i < configs_.size(); ++i) {
      const std::string suffix =
          o.rounds > 1 ? " [round " + std::to_string(round) + "/" + std::to_string(o.rounds) + "]"
                       : "";
      results_[i].push_back(run_logged(configs_[i].first, o, configs_[i].second + suffix));
    }
}

BenchResult AlternatingRuns::result(size_t i) const {
  if (i == kNone) return {};
  std::vector<BenchResult> rounds = results_.at(i);
  for (const BenchResult& r : rounds)
    if (!r.ok) return r;
  std::sort(rounds.begin(), rounds.end(), [](const BenchResult& a, const BenchResult& b) {
    return a.total_step_s() < b.total_step_s();
  });
  return rounds[(rounds.size() - 1) / 2];
}

std::string AlternatingRuns::status(size_t i, const std::string& device,
                                    const std::string& missing) const {
  if (!missing.empty()) return missing;
  const BenchResult r = result(i);
  return r.ok ? measured_status(device) : "failed: " + r.error;
}

}  // namespace ich::bench
