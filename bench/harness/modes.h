// The measurements of the source papers, one mode each (the `ichseg bench` command, apps/
// cmd_bench.cpp, parses the flags into Options and calls run_mode):
//
//   epoch      time per training epoch on each device, and the speedup over the CPU (the
//              CUDA paper's comparison)                                    mode_epoch.cpp
//   sweep      image size x batch size: time per image and peak memory per device (the
//              histopathology paper's sweep)                               mode_sweep.cpp
//   threads    CPU thread scaling 1..nproc: speedup over 1 thread, and of the GPU over each
//                                                                          mode_threads.cpp
//   allocator  caching allocator on vs off (the paper's cnmem experiment); on a GPU also our
//              im2col convolution vs cuDNN and our SGEMM vs cuBLAS         mode_allocator.cpp
//
// Every configuration runs in a child process of its own (bench/harness/measurement.h), so
// the peak resident memory of a row is that configuration's. Each mode writes MODE.csv,
// MODE.md (the table with the command, the date and the load) and MODE.svg into --out.
// Nothing is invented: cuda rows without a GPU say "not measured: no GPU", cuda-emu rows say
// that their time is the emulator's on the CPU, and configurations whose estimated memory is
// over --mem-limit-gb are skipped with the estimate written in the row.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bench/harness/measurement.h"
#include "bench/harness/table.h"

namespace ich::bench {

constexpr const char* kNoGpu = "not measured: no GPU";
constexpr const char* kMeasured = "measured";
constexpr const char* kEmulated = "measured: emulated on the CPU, not GPU time";
constexpr double kMiB = 1024.0 * 1024.0, kGiB = kMiB * 1024.0;

// The model and step sizes of a mode's configurations; 0 in Options: not given.
struct StepSettings {
  int width = 0, size = 0, batch = 0, steps = 0, epoch_images = 0;
};

// The settings of one `ichseg bench` invocation (flags given, or the mode's defaults).
struct Options {
  std::string out_dir = "bench-results";
  bool quick = false;
  std::vector<std::string> devices;  // empty: the mode's default
  StepSettings given;                // --width, --size, --batch, --steps, --epoch-images
  int depth = 3, warmup = 1;
  std::vector<int> sizes, batches, threads;
  double mem_limit_gb = 0, timeout_s = 1800;
  int rounds = 1;
  std::string command_line;

  // Each setting as given, or else the mode's default for a full or a --quick run.
  StepSettings resolve(const StepSettings& full, const StepSettings& quick_run) const;
  std::vector<std::string> devices_or(std::vector<std::string> fallback) const;
};

// What a mode measured, written as MODE.csv, MODE.md and MODE.svg.
struct ModeOutput {
  ModeOutput(std::string mode_name, std::string table_title, std::vector<std::string> columns)
      : mode(std::move(mode_name)), title(std::move(table_title)) {
    table.columns = std::move(columns);
  }

  std::string mode, title, notes;
  Table table;
  std::string svg;
};

const std::vector<std::string>& mode_names();  // epoch, sweep, threads, allocator
// Runs one mode (a name of mode_names()).
ModeOutput run_mode(const std::string& mode, const Options& o);
// MODE.csv, MODE.md, MODE.svg into o.out_dir; load_before is load_average() before the mode.
void write_mode_files(const ModeOutput& m, const Options& o, const std::string& load_before);

ModeOutput bench_epoch(const Options& o);
ModeOutput bench_sweep(const Options& o);
ModeOutput bench_threads(const Options& o);
ModeOutput bench_allocator(const Options& o);

// ---- what the modes share

bool is_cuda(const std::string& device);
bool is_emu(const std::string& device);
// "" when the device can be measured here, otherwise the row's status.
std::string unavailable(const std::string& device);
std::string measured_status(const std::string& device);  // measured, or emulated

// The configurations of a mode, run in rounds: with --rounds N each configuration runs N
// times, alternating (a b c a b c ...), so that a change in the machine's load falls on all
// of them alike. A row reports its median round (by time); a failed round fails the row.
class AlternatingRuns {
 public:
  static constexpr size_t kNone = size_t(-1);

  // Returns the configuration's index for result() and status().
  size_t add(const BenchConfig& config, const std::string& label);
  void run(const Options& o);
  // The median round of configuration i; a default (not ok) result for kNone.
  BenchResult result(size_t i) const;
  // The row's status: `missing` when set, else measured / emulated / failed.
  std::string status(size_t i, const std::string& device, const std::string& missing) const;

 private:
  std::vector<std::pair<BenchConfig, std::string>> configs_;
  std::vector<std::vector<BenchResult>> results_;
};

}  // namespace ich::bench
