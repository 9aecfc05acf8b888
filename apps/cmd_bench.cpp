// ichseg bench MODE [options]: the measurements of the source papers, one command each
// (epoch, sweep, threads, allocator, all). This file is the command line; what each mode
// measures, the child processes that measure it and the files it writes are the harness of
// bench/harness (modes.h).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "bench/harness/child.h"
#include "bench/harness/machine.h"
#include "bench/harness/modes.h"
#include "core/device.h"
#include "core/error.h"

namespace {

using ich::bench::Options;

void add_options(CLI::App& app, std::string* mode, std::string* devices, Options* o) {
  app.add_option("mode", *mode, "epoch, sweep, threads, allocator or all")->required();
  app.add_option("--out", o->out_dir, "folder for the CSV, markdown and SVG files")
      ->capture_default_str();
  app.add_flag("--quick", o->quick, "a reduced configuration that finishes in a few minutes");
  app.add_option("--devices", *devices,
                 "comma-separated devices (cpu, cuda-emu, cuda[:N]); default per mode");
  app.add_option("--width", o->given.width, "U-Net width (channels of the first level)")
      ->check(CLI::Range(1, 512));
  app.add_option("--depth", o->depth, "U-Net pooling levels")->check(CLI::Range(1, 6));
  app.add_option("--size", o->given.size, "image side (epoch, threads, allocator)")
      ->check(CLI::Range(8, 4096));
  app.add_option("--batch", o->given.batch, "images per step (epoch, threads, allocator)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--epoch-images", o->given.epoch_images, "images per epoch (epoch)")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--sizes", o->sizes, "image sides of the sweep")->delimiter(',');
  app.add_option("--batches", o->batches, "batch sizes of the sweep")->delimiter(',');
  app.add_option("--threads", o->threads, "CPU thread counts (threads; default 1..nproc)")
      ->delimiter(',');
  app.add_option("--steps", o->given.steps, "timed steps per configuration")
      ->check(CLI::Range(1, 10000));
  app.add_option("--warmup", o->warmup, "untimed steps before timing")->check(CLI::Range(0, 1000));
  app.add_option("--mem-limit-gb", o->mem_limit_gb,
                 "skip sweep configurations estimated above this (default: half the RAM)")
      ->check(CLI::PositiveNumber);
  app.add_option("--rounds", o->rounds,
                 "run every configuration this many times, alternating; rows give the median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--timeout-s", o->timeout_s, "give up on one configuration after this long")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void check_at_least(const std::vector<int>& v, const char* flag, int min) {
  for (int x : v)
    ICH_CHECK(x >= min, flag << " " << x << " is out of range: each value must be >= " << min);
}

// The checks CLI11 cannot make, and what follows from the flags given.
void finish_options(const std::string& devices, Options* o) {
  std::stringstream list(devices);
  for (std::string d; std::getline(list, d, ',');) {
    if (d.empty()) continue;
    ich::Device::parse(d);  // throws with the accepted names
    o->devices.push_back(d);
  }
  check_at_least(o->sizes, "--sizes", 1 << o->depth);
  check_at_least(o->batches, "--batches", 1);
  check_at_least(o->threads, "--threads", 1);
  if (o->given.size > 0)
    ICH_CHECK(o->given.size >= (1 << o->depth),
              "--size " << o->given.size << " is smaller than 2^depth = " << (1 << o->depth));
  if (o->mem_limit_gb <= 0)
    o->mem_limit_gb = 0.5 * ich::bench::mem_total_bytes() / ich::bench::kGiB;
}

int run_bench(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "__child")
    return ich::bench::child_main(std::vector<std::string>(argv + 2, argv + argc));

  CLI::App app{
      "The source papers' benchmarks, one command each: epoch, sweep, threads, "
      "allocator, all. Writes MODE.csv, MODE.md and MODE.svg into --out.",
      "ichseg bench"};
  std::string mode, devices;
  Options o;
  add_options(app, &mode, &devices, &o);
  if (const int code = ich::app::parse_command_line(app, argc, argv); code >= 0) return code;
  const std::vector<std::string>& names = ich::bench::mode_names();
  ICH_CHECK(mode == "all" || std::find(names.begin(), names.end(), mode) != names.end(),
            "unknown mode '" << mode << "': use epoch, sweep, threads, allocator or all");
  finish_options(devices, &o);
  for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "ichseg ") + std::string(argv[i]);

  for (const std::string& each : mode == "all" ? names : std::vector<std::string>{mode}) {
    const std::string load = ich::bench::load_average();
    ich::bench::write_mode_files(ich::bench::run_mode(each, o), o, load);
  }
  return 0;
}

}  // namespace

ICH_COMMAND("bench",
            "the papers' benchmarks: epoch, sweep, threads, allocator (CSV, SVG, markdown)",
            run_bench);
