// ichseg bench MODE [options]: the measurements of the source papers, one command each.
//
//   epoch      time per training epoch on each device, and the speedup over the CPU (the
//              CUDA paper's comparison)
//   sweep      image size x batch size: time per image and peak memory per device (the
//              histopathology paper's sweep)
//   threads    CPU thread scaling 1..nproc: speedup over 1 thread, and of the GPU over each
//   allocator  caching allocator on vs off (the paper's cnmem experiment); on a GPU also our
//              im2col convolution vs cuDNN and our SGEMM vs cuBLAS
//   all        the four above
//
// Every configuration runs in a child process of its own (apps/bench_child.h), so the peak
// resident memory of a row is that configuration's. Each mode writes MODE.csv, MODE.md (the
// table with the command, the date and the load) and MODE.svg into --out. Nothing is
// invented: cuda rows without a GPU say "not measured: no GPU", cuda-emu rows say that
// their time is the emulator's on the CPU, and configurations whose estimated memory is
// over --mem-limit-gb are skipped with the estimate written in the row.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/bench_child.h"
#include "apps/cli_errors.h"
#include "apps/command.h"
#include "apps/svg_plot.h"
#include "core/error.h"
#include "data/fileutil.h"
#include "kernels/backend.h"

namespace {

using namespace ich::app;

constexpr const char* kNoGpu = "not measured: no GPU";
constexpr const char* kMeasured = "measured";
constexpr const char* kEmulated = "measured: emulated on the CPU, not GPU time";
constexpr double kMiB = 1024.0 * 1024.0, kGiB = kMiB * 1024.0;

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

std::string num(double v, int precision = 4) {
  if (!std::isfinite(v)) return "";
  char buf[48];
  if (std::fabs(v) >= 1e4)  // whole numbers, not 1.758e+04
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string to_csv(const Table& t) {
  std::ostringstream os;
  for (size_t i = 0; i < t.columns.size(); ++i) os << (i ? "," : "") << csv_field(t.columns[i]);
  os << "\n";
  for (const auto& row : t.rows) {
    for (size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << csv_field(row[i]);
    os << "\n";
  }
  return os.str();
}

std::string to_markdown(const Table& t) {
  auto cell = [](const std::string& s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  std::ostringstream os;
  os << "|";
  for (const auto& c : t.columns) os << " " << cell(c) << " |";
  os << "\n|";
  for (size_t i = 0; i < t.columns.size(); ++i) os << " --- |";
  os << "\n";
  for (const auto& row : t.rows) {
    os << "|";
    for (const auto& f : row) os << " " << cell(f) << " |";
    os << "\n";
  }
  return os.str();
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

double mem_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024.0;
    in.ignore(1 << 10, '\n');
  }
  return 8.0 * kGiB;
}

// The settings of one `ichseg bench` invocation (flags given, or the mode's defaults).
struct Options {
  std::string out_dir = "bench-results";
  bool quick = false;
  std::vector<std::string> devices;  // empty: the mode's default
  int width = 0, depth = 3, size = 0, batch = 0, steps = 0, warmup = 1, epoch_images = 0;
  std::vector<int> sizes, batches, threads;
  double mem_limit_gb = 0, timeout_s = 1800;
  int rounds = 1;
  std::string command_line;
};

// What a mode measured, written as MODE.csv, MODE.md and MODE.svg.
struct ModeOutput {
  std::string mode, title, notes;
  Table table;
  std::string svg;
};

bool is_cuda(const std::string& device) {
  return ich::Device::parse(device).kind == ich::DeviceKind::cuda;
}
bool is_emu(const std::string& device) {
  return ich::Device::parse(device).kind == ich::DeviceKind::cuda_emu;
}

// "" when the device can be measured here, otherwise the row's status.
std::string unavailable(const std::string& device) {
  const ich::Device d = ich::Device::parse(device);
  if (ich::backend_available(d)) return "";
  if (d.kind == ich::DeviceKind::cuda) {
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

BenchResult run_logged(const BenchConfig& c, const Options& o, const std::string& what) {
  std::printf("  %-48s ", what.c_str());
  std::fflush(stdout);
  BenchResult r = run_bench_child(c, o.timeout_s);
  if (r.ok)
    std::printf("%.4g s/step, peak RSS %.0f MiB\n", r.median_step_s(), r.max_rss_bytes / kMiB);
  else
    std::printf("failed: %s\n", r.error.c_str());
  std::fflush(stdout);
  return r;
}

// The configurations of a mode, run in rounds: with --rounds N each configuration runs N
// times, alternating (a b c a b c ...), so that a change in the machine's load falls on all
// of them alike. A row reports its median round (by time); a failed round fails the row.
class Plan {
 public:
  static constexpr size_t kNone = size_t(-1);

  size_t add(const BenchConfig& config, const std::string& label) {
    jobs_.push_back({config, label});
    return jobs_.size() - 1;
  }

  void run(const Options& o) {
    results_.assign(jobs_.size(), {});
    for (int round = 1; round <= o.rounds; ++round)
      for (size_t i = 0; i < jobs_.size(); ++i) {
        const std::string suffix = o.rounds > 1 ? " [round " + std::to_string(round) + "/" +
                                                      std::to_string(o.rounds) + "]"
                                                : "";
        results_[i].push_back(run_logged(jobs_[i].first, o, jobs_[i].second + suffix));
      }
  }

  // The median round of job i; a default (not ok) result for kNone.
  BenchResult result(size_t i) const {
    if (i == kNone) return {};
    std::vector<BenchResult> rounds = results_.at(i);
    for (const BenchResult& r : rounds)
      if (!r.ok) return r;
    std::sort(rounds.begin(), rounds.end(), [](const BenchResult& a, const BenchResult& b) {
      return a.total_step_s() < b.total_step_s();
    });
    return rounds[(rounds.size() - 1) / 2];
  }

  // The row's status: `missing` when set, else measured / emulated / failed.
  std::string status(size_t i, const std::string& device, const std::string& missing) const {
    if (!missing.empty()) return missing;
    const BenchResult r = result(i);
    return r.ok ? measured_status(device) : "failed: " + r.error;
  }

 private:
  std::vector<std::pair<BenchConfig, std::string>> jobs_;
  std::vector<std::vector<BenchResult>> results_;
};

void write_outputs(const ModeOutput& m, const Options& o, const std::string& load_before) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  ICH_CHECK(!ec && fs::is_directory(o.out_dir),
            "cannot create the output folder " << o.out_dir << ": " << ec.message());
  const std::string base = (fs::path(o.out_dir) / m.mode).string();
  std::ostringstream md;
  md << "## " << m.title << "\n\n"
     << "Command: `" << o.command_line << "`  \n"
     << "Measured " << utc_now() << " on " << ::sysconf(_SC_NPROCESSORS_ONLN)
     << " CPUs; load average (1, 5, 15 min) " << load_before << " before, " << load_average()
     << " after. Every configuration ran " << o.rounds
     << (o.rounds > 1 ? " times, alternating with the others; a row is its median round"
                      : " time (--rounds N to repeat)")
     << ".\n\n"
     << to_markdown(m.table) << "\n"
     << m.notes << "\n";
  ich::data::write_file_atomic(base + ".csv", to_csv(m.table));
  ich::data::write_file_atomic(base + ".md", md.str());
  ich::data::write_file_atomic(base + ".svg", m.svg + "\n");
  std::printf("wrote %s.csv, %s.md, %s.svg\n", base.c_str(), base.c_str(), base.c_str());
}

std::vector<std::string> devices_or(const Options& o, std::vector<std::string> fallback) {
  return o.devices.empty() ? fallback : o.devices;
}
int pick(int given, int full, int quick, bool is_quick) {
  return given > 0 ? given : (is_quick ? quick : full);
}

// ---- epoch

ModeOutput bench_epoch(const Options& o) {
  const int width = pick(o.width, 16, 8, o.quick), size = pick(o.size, 64, 64, o.quick);
  const int batch = pick(o.batch, 8, 8, o.quick);
  const int images = pick(o.epoch_images, 64, 32, o.quick);
  const int steps = (images + batch - 1) / batch;
  ModeOutput m;
  m.mode = "epoch";
  m.title = "Time per training epoch, per device";
  m.table.columns = {"device",         "status",         "width",       "size",
                     "batch",          "images",         "epoch_s",     "step_s_median",
                     "images_per_s",   "speedup_vs_cpu", "peak_rss_mib", "tensor_peak_mib"};
  std::printf("bench epoch: U-Net width %d, %d images of %dx%d per epoch, batch %d\n", width,
              steps * batch, size, size, batch);
  struct Row {
    std::string device, status;
    size_t job = Plan::kNone;
    BenchResult r;
  };
  Plan plan;
  std::vector<Row> rows;
  for (const std::string& device : devices_or(o, {"cpu", "cuda-emu", "cuda"})) {
    Row row{device, unavailable(device), Plan::kNone, {}};
    if (row.status.empty()) {
      BenchConfig c;
      c.device = device, c.width = width, c.depth = o.depth, c.size = size, c.batch = batch;
      c.warmup = o.warmup, c.steps = steps, c.data_in_step = true;
      row.job = plan.add(c, device);
    }
    rows.push_back(row);
  }
  plan.run(o);
  double cpu_epoch = NAN;
  for (Row& row : rows) {
    row.r = plan.result(row.job);
    row.status = plan.status(row.job, row.device, row.status);
    if (row.r.ok && row.device == "cpu") cpu_epoch = row.r.total_step_s();
  }
  std::vector<std::string> categories;
  std::vector<double> epoch_s, speedup;
  for (const Row& row : rows) {
    const bool ok = row.r.ok;
    const double e = ok ? row.r.total_step_s() : NAN;
    const double s = ok ? cpu_epoch / e : NAN;
    m.table.rows.push_back({row.device, row.status, std::to_string(width), std::to_string(size),
                            std::to_string(batch), std::to_string(steps * batch), num(e),
                            num(ok ? row.r.median_step_s() : NAN), num(steps * batch / e),
                            num(s), num(ok ? row.r.max_rss_bytes / kMiB : NAN),
                            num(ok ? row.r.peak_bytes / kMiB : NAN)});
    categories.push_back(row.device + (is_emu(row.device) ? " (emulated)" : ""));
    epoch_s.push_back(e);
    speedup.push_back(s);
  }
  m.svg = svg_grid({svg_bar_chart("Time per epoch", "seconds", categories, {{"epoch", epoch_s}}),
                    svg_bar_chart("Speedup over the CPU", "x", categories, {{"speedup", speedup}})});
  m.notes =
      "An epoch is " + std::to_string(steps) + " training steps (forward, Dice+BCE loss, backward, "
      "Adam) on the built-in blob task, each drawing its batch (data generation is inside the "
      "time), after " + std::to_string(o.warmup) + " untimed warm-up step(s). speedup_vs_cpu = "
      "cpu epoch_s / epoch_s. cuda-emu runs the CUDA kernels on the CPU: its time is the "
      "emulator's, not GPU time. cuda rows are measured only where a GPU is present.\n";
  return m;
}

// ---- sweep

ModeOutput bench_sweep(const Options& o) {
  const int width = pick(o.width, 64, 16, o.quick);
  const std::vector<int> sizes =
      !o.sizes.empty() ? o.sizes : o.quick ? std::vector<int>{32, 64, 128}
                                           : std::vector<int>{32, 64, 128, 180, 200};
  const std::vector<int> batches =
      !o.batches.empty() ? o.batches : o.quick ? std::vector<int>{10, 20}
                                               : std::vector<int>{10, 20, 50, 100, 150};
  const int steps = pick(o.steps, 2, 1, o.quick);
  const double limit = o.mem_limit_gb * kGiB;
  ModeOutput m;
  m.mode = "sweep";
  m.title = "Image size x batch size: time per image and peak memory, per device";
  m.table.columns = {"device",       "status",       "width",          "size",
                     "batch",        "ms_per_image", "step_s",         "peak_rss_mib",
                     "tensor_peak_mib", "estimate_mib"};
  std::printf("bench sweep: U-Net width %d, memory limit %.1f GiB\n", width, o.mem_limit_gb);
  // First the plan (what runs, what is skipped and why), then the rounds, then the rows.
  struct Cell {
    std::string device, skipped;
    int size, batch;
    double estimate;
    size_t job = Plan::kNone;
  };
  Plan plan;
  std::vector<Cell> cells;
  for (const std::string& device : devices_or(o, {"cpu", "cuda"}))
    for (int size : sizes)
      for (int batch : batches) {
        Cell cell{device, unavailable(device), size, batch,
                  estimate_train_bytes(width, o.depth, size, batch)};
        if (cell.skipped.empty() && cell.estimate > limit) {
          char buf[160];
          std::snprintf(buf, sizeof buf,
                        "skipped: estimated %.1f GiB > limit %.1f GiB (--mem-limit-gb)",
                        cell.estimate / kGiB, o.mem_limit_gb);
          cell.skipped = buf;
        }
        if (cell.skipped.empty()) {
          BenchConfig c;
          c.device = device, c.width = width, c.depth = o.depth, c.size = size, c.batch = batch;
          c.warmup = o.warmup, c.steps = steps;
          cell.job = plan.add(c, device + " " + std::to_string(size) + "x" +
                                     std::to_string(size) + " batch " + std::to_string(batch));
        }
        cells.push_back(cell);
      }
  plan.run(o);
  std::vector<std::string> charts;
  size_t next_cell = 0;
  for (const std::string& device : devices_or(o, {"cpu", "cuda"})) {
    const std::string missing = unavailable(device);
    std::vector<ich::app::Series> time_series, memory_series;
    std::vector<double> x(batches.begin(), batches.end());
    for (int size : sizes) {
      ich::app::Series t{std::to_string(size) + "x" + std::to_string(size), {}},
          mem{t.name, {}};
      for (int batch : batches) {
        const Cell& cell = cells.at(next_cell++);
        const double estimate = cell.estimate;
        const BenchResult r = plan.result(cell.job);
        const std::string status = plan.status(cell.job, device, cell.skipped);
        const double step = r.ok ? r.median_step_s() : NAN;
        // On a GPU the memory that limits the batch is the device's: the tensor peak.
        const double memory = r.ok ? (is_cuda(device) ? r.peak_bytes : r.max_rss_bytes) : NAN;
        m.table.rows.push_back({device, status, std::to_string(width), std::to_string(size),
                                std::to_string(batch), num(1e3 * step / batch), num(step),
                                num(r.ok ? r.max_rss_bytes / kMiB : NAN),
                                num(r.ok ? r.peak_bytes / kMiB : NAN), num(estimate / kMiB)});
        t.y.push_back(1e3 * step / batch);
        mem.y.push_back(memory / kMiB);
      }
      time_series.push_back(t);
      memory_series.push_back(mem);
    }
    if (!missing.empty()) continue;
    const std::string label = device + (is_emu(device) ? " (emulated)" : "");
    charts.push_back(
        svg_line_chart(label + ": time per image", "batch size", x, time_series, "ms per image"));
    charts.push_back(svg_line_chart(
        label + (is_cuda(device) ? ": peak device memory" : ": peak resident memory"),
        "batch size", x, memory_series, "MiB"));
  }
  if (charts.empty()) charts.push_back(svg_line_chart("no device measured", "batch size", {}, {}));
  m.svg = svg_grid(charts);
  m.notes =
      "Each row is one child process per round: " + std::to_string(o.warmup) +
      " untimed warm-up step(s), then the median of " + std::to_string(steps) + " timed training step(s) on one fixed batch "
      "of the blob task. peak_rss_mib is the child's peak resident set (wait4); tensor_peak_mib "
      "the backend's peak bytes in use (tensors and workspaces; on cuda, device memory). "
      "estimate_mib is the estimate checked against --mem-limit-gb before a configuration runs "
      "(apps/bench_child.cpp, estimate_train_bytes).\n";
  return m;
}

// ---- threads

ModeOutput bench_threads(const Options& o) {
  const int width = pick(o.width, 64, 16, o.quick), size = pick(o.size, 160, 64, o.quick);
  const int batch = pick(o.batch, 4, 4, o.quick), steps = pick(o.steps, 3, 2, o.quick);
  std::vector<int> threads = o.threads;
  if (threads.empty())
    for (long t = 1; t <= ::sysconf(_SC_NPROCESSORS_ONLN); ++t) threads.push_back(int(t));
  ModeOutput m;
  m.mode = "threads";
  m.title = "CPU thread scaling, and the GPU over each";
  m.table.columns = {"threads", "status", "width",        "size",       "batch",
                     "step_s",  "speedup_vs_1_thread", "gpu_step_s", "gpu_speedup_over_cpu"};
  std::printf("bench threads: U-Net width %d, batch %d of %dx%d\n", width, batch, size, size);
  BenchConfig c;
  c.device = "cpu", c.width = width, c.depth = o.depth, c.size = size, c.batch = batch;
  c.warmup = o.warmup, c.steps = steps;
  Plan plan;
  std::string gpu_status = unavailable("cuda");
  size_t gpu_job = Plan::kNone;
  if (gpu_status.empty()) {
    BenchConfig g = c;
    g.device = "cuda";
    gpu_job = plan.add(g, "cuda");
  }
  std::vector<size_t> jobs;
  for (int t : threads) {
    c.threads = t;
    jobs.push_back(plan.add(c, "cpu, " + std::to_string(t) + " thread(s)"));
  }
  plan.run(o);
  double gpu_step = NAN;
  if (gpu_status.empty()) {
    const BenchResult r = plan.result(gpu_job);
    gpu_step = r.ok ? r.median_step_s() : NAN;
    gpu_status = r.ok ? "" : "failed: " + r.error;
  }
  double one = NAN;
  std::vector<double> x, step_s, speedup, ideal;
  for (size_t k = 0; k < threads.size(); ++k) {
    const int t = threads[k];
    const BenchResult r = plan.result(jobs[k]);
    const double s = r.ok ? r.median_step_s() : NAN;
    if (t == 1) one = s;
    x.push_back(t);
    step_s.push_back(s);
    speedup.push_back(one / s);
    ideal.push_back(t);
    m.table.rows.push_back({std::to_string(t), r.ok ? kMeasured : "failed: " + r.error,
                            std::to_string(width), std::to_string(size), std::to_string(batch),
                            num(s), num(one / s), gpu_status.empty() ? num(gpu_step) : gpu_status,
                            gpu_status.empty() ? num(s / gpu_step) : gpu_status});
  }
  m.svg = svg_grid({svg_line_chart("Time per training step", "CPU threads", x, {{"cpu", step_s}},
                                   "seconds"),
                    svg_line_chart("Speedup over 1 thread", "CPU threads", x,
                                   {{"measured", speedup}, {"ideal", ideal}}, "x")});
  m.notes =
      "Threads = OMP_NUM_THREADS = OPENBLAS_NUM_THREADS of the child. step_s is the median of " +
      std::to_string(steps) + " training steps after " + std::to_string(o.warmup) +
      " warm-up step(s). gpu_speedup_over_cpu = step_s / gpu_step_s (the same step on cuda:0), "
      "measured only where a GPU is present.\n";
  return m;
}

// ---- allocator

ModeOutput bench_allocator(const Options& o) {
  const int width = pick(o.width, 16, 8, o.quick), size = pick(o.size, 64, 32, o.quick);
  const int batch = pick(o.batch, 4, 2, o.quick), steps = pick(o.steps, 3, 2, o.quick);
  ModeOutput m;
  m.mode = "allocator";
  m.title = "Caching allocator on vs off; our convolution and SGEMM vs cuDNN and cuBLAS";
  m.table.columns = {"what",    "device",          "variant",          "status",
                     "time_ms", "allocs_per_step", "cache_hits_per_step", "tensor_peak_mib",
                     "peak_rss_mib"};
  std::printf("bench allocator: U-Net width %d, batch %d of %dx%d\n", width, batch, size, size);
  const std::string step_what = "train step w" + std::to_string(width) + " b" +
                                std::to_string(batch) + " " + std::to_string(size) + "x" +
                                std::to_string(size);
  std::vector<std::string> categories;
  std::vector<double> on_ms, off_ms, on_allocs, off_allocs;
  std::vector<std::string> devices;
  for (const std::string& d : devices_or(o, {"cuda-emu", "cuda"}))
    if (is_emu(d) || is_cuda(d)) devices.push_back(d);
  ICH_CHECK(!devices.empty(),
            "bench allocator: the caching allocator is the CUDA backend's: --devices must name "
            "cuda-emu or cuda");
  // The peers: our im2col convolution (with our SGEMM and with cuBLAS) vs cuDNN, our SGEMM vs
  // cuBLAS. Only a GPU can time them; cuda-emu's time says nothing about either.
  const int conv_batch = 4, conv_channels = 64, conv_side = 160;
  Plan plan;
  std::vector<size_t> jobs;
  for (const std::string& device : devices)
    for (int caching : {1, 0}) {
      size_t job = Plan::kNone;
      if (unavailable(device).empty()) {
        BenchConfig c;
        c.device = device, c.width = width, c.depth = o.depth, c.size = size, c.batch = batch;
        c.warmup = o.warmup, c.steps = steps, c.caching = caching;
        job = plan.add(c, device + ", caching " + (caching ? "on" : "off"));
      }
      jobs.push_back(job);
    }
  std::string gpu = unavailable("cuda");
  size_t peers_job = Plan::kNone;
  if (gpu.empty()) {
    BenchConfig c;
    c.task = "peers", c.device = "cuda", c.width = conv_channels, c.size = conv_side;
    c.batch = conv_batch, c.steps = 10;
    peers_job = plan.add(c, "cuda: conv and gemm peers");
  }
  plan.run(o);
  size_t next_job = 0;
  for (const std::string& device : devices) {
    const std::string missing = unavailable(device);
    categories.push_back(device + (is_emu(device) ? " (emulated)" : ""));
    for (int caching : {1, 0}) {
      const size_t job = jobs.at(next_job++);
      const BenchResult r = plan.result(job);
      const std::string status = plan.status(job, device, missing);
      const double ms = r.ok ? 1e3 * r.median_step_s() : NAN;
      m.table.rows.push_back({step_what, device, caching ? "caching on" : "caching off", status,
                              num(ms), num(r.ok ? r.allocs_per_step : NAN),
                              num(r.ok ? r.hits_per_step : NAN),
                              num(r.ok ? r.peak_bytes / kMiB : NAN),
                              num(r.ok ? r.max_rss_bytes / kMiB : NAN)});
      (caching ? on_ms : off_ms).push_back(ms);
      (caching ? on_allocs : off_allocs).push_back(r.ok ? r.allocs_per_step : NAN);
    }
  }
  if (gpu.empty()) {
    const BenchResult r = plan.result(peers_job);
    if (r.ok) {
      for (const PeerTiming& p : r.peers)
        m.table.rows.push_back({p.op, "cuda", p.variant,
                                std::isfinite(p.ms) ? kMeasured : "not measured: no cuDNN in this build",
                                num(p.ms), "", "", "", ""});
    } else {
      gpu = "failed: " + r.error;
    }
  }
  if (!gpu.empty()) {
    char conv[96];
    std::snprintf(conv, sizeof conv, "conv3x3 %dx%dx%dx%d->%d fwd", conv_batch, conv_channels,
                  conv_side, conv_side, conv_channels);
    for (const char* v : {"im2col+our SGEMM", "im2col+cuBLAS", "cuDNN"})
      m.table.rows.push_back({conv, "cuda", v, gpu, "", "", "", "", ""});
    for (const char* v : {"our SGEMM", "cuBLAS"})
      m.table.rows.push_back({"sgemm 1024x1024x1024", "cuda", v, gpu, "", "", "", "", ""});
  }
  m.svg = svg_grid(
      {svg_bar_chart("Time per training step", "ms", categories,
                     {{"caching on", on_ms}, {"caching off", off_ms}}),
       svg_bar_chart("Device allocations per step", "calls", categories,
                     {{"caching on", on_allocs}, {"caching off", off_allocs}})});
  m.notes =
      "Caching off sets ICH_CUDA_CACHING_ALLOCATOR=0 in the child: every allocation is a "
      "cudaMalloc (on cuda-emu, the emulator's host allocation). allocs_per_step and "
      "cache_hits_per_step are counted by the allocator over " + std::to_string(steps) +
      " timed steps. On cuda-emu the time is the emulator's on the CPU, not GPU time: "
      "it shows the allocation counts, not what caching buys on a GPU. Convolution and SGEMM "
      "peers are device time (CUDA events), the median of 10 runs, measured only on a GPU.\n";
  return m;
}

std::vector<int> positive_list(const std::vector<int>& v, const char* flag, int min) {
  for (int x : v)
    ICH_CHECK(x >= min, flag << " " << x << " is out of range: each value must be >= " << min);
  return v;
}

int run_bench(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "__child")
    return bench_child_main(std::vector<std::string>(argv + 2, argv + argc));

  CLI::App app{"The source papers' benchmarks, one command each: epoch, sweep, threads, "
               "allocator, all. Writes MODE.csv, MODE.md and MODE.svg into --out.",
               "ichseg bench"};
  std::string mode;
  Options o;
  std::string devices;
  app.add_option("mode", mode, "epoch, sweep, threads, allocator or all")->required();
  app.add_option("--out", o.out_dir, "folder for the CSV, markdown and SVG files")
      ->capture_default_str();
  app.add_flag("--quick", o.quick, "a reduced configuration that finishes in a few minutes");
  app.add_option("--devices", devices,
                 "comma-separated devices (cpu, cuda-emu, cuda[:N]); default per mode");
  app.add_option("--width", o.width, "U-Net width (channels of the first level)")
      ->check(CLI::Range(1, 512));
  app.add_option("--depth", o.depth, "U-Net pooling levels")->check(CLI::Range(1, 6));
  app.add_option("--size", o.size, "image side (epoch, threads, allocator)")
      ->check(CLI::Range(8, 4096));
  app.add_option("--batch", o.batch, "images per step (epoch, threads, allocator)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--epoch-images", o.epoch_images, "images per epoch (epoch)")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--sizes", o.sizes, "image sides of the sweep")->delimiter(',');
  app.add_option("--batches", o.batches, "batch sizes of the sweep")->delimiter(',');
  app.add_option("--threads", o.threads, "CPU thread counts (threads; default 1..nproc)")
      ->delimiter(',');
  app.add_option("--steps", o.steps, "timed steps per configuration")->check(CLI::Range(1, 10000));
  app.add_option("--warmup", o.warmup, "untimed steps before timing")->check(CLI::Range(0, 1000));
  app.add_option("--mem-limit-gb", o.mem_limit_gb,
                 "skip sweep configurations estimated above this (default: half the RAM)")
      ->check(CLI::PositiveNumber);
  app.add_option("--rounds", o.rounds,
                 "run every configuration this many times, alternating; rows give the median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--timeout-s", o.timeout_s, "give up on one configuration after this long")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e);
  }
  ICH_CHECK(mode == "epoch" || mode == "sweep" || mode == "threads" || mode == "allocator" ||
                mode == "all",
            "unknown mode '" << mode << "': use epoch, sweep, threads, allocator or all");
  std::stringstream list(devices);
  for (std::string d; std::getline(list, d, ',');) {
    if (d.empty()) continue;
    ich::Device::parse(d);  // throws with the accepted names
    o.devices.push_back(d);
  }
  positive_list(o.sizes, "--sizes", 1 << o.depth);
  positive_list(o.batches, "--batches", 1);
  positive_list(o.threads, "--threads", 1);
  if (o.size > 0)
    ICH_CHECK(o.size >= (1 << o.depth),
              "--size " << o.size << " is smaller than 2^depth = " << (1 << o.depth));
  if (o.mem_limit_gb <= 0) o.mem_limit_gb = 0.5 * mem_total_bytes() / kGiB;
  for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "ichseg ") + std::string(argv[i]);

  const std::vector<std::string> modes =
      mode == "all" ? std::vector<std::string>{"epoch", "sweep", "threads", "allocator"}
                    : std::vector<std::string>{mode};
  for (const std::string& each : modes) {
    const std::string load = load_average();
    ModeOutput out = each == "epoch"     ? bench_epoch(o)
                     : each == "sweep"   ? bench_sweep(o)
                     : each == "threads" ? bench_threads(o)
                                         : bench_allocator(o);
    write_outputs(out, o, load);
  }
  return 0;
}

}  // namespace

ICH_COMMAND("bench", "the papers' benchmarks: epoch, sweep, threads, allocator (CSV, SVG, markdown)",
            run_bench);
