// bench epoch: time per training epoch on each device, and the speedup over the CPU.
#include <cmath>
#include <cstdio>

#include "apps/svg_plot.h"
#include "core/ceil_div.h"
#include "bench/harness/modes.h"

namespace ich::bench {

ModeOutput bench_epoch(const Options& o) {
  //                                   width size batch steps images
  const StepSettings s = o.resolve({16, 64, 8, 0, 64}, {8, 64, 8, 0, 32});
  const int width = s.width, size = s.size, batch = s.batch;
  const int steps = ceil_div(s.epoch_images, batch);
  ModeOutput m("epoch", "Time per training epoch, per device",
               {"device", "status", "width", "size", "batch", "images", "epoch_s", "step_s_median",
                "images_per_s", "speedup_vs_cpu", "peak_rss_mib", "tensor_peak_mib"});
  std::printf("bench epoch: U-Net width %d, %d images of %dx%d per epoch, batch %d\n", width,
              steps * batch, size, size, batch);
  struct Row {
    std::string device, status;
    size_t run = AlternatingRuns::kNone;
    BenchResult r;
  };
  AlternatingRuns runs;
  std::vector<Row> rows;
  for (const std::string& device : o.devices_or({"cpu", "cuda-emu", "cuda"})) {
    Row row{device, unavailable(device), AlternatingRuns::kNone, {}};
    if (row.status.empty()) {
      BenchConfig c;
      c.device = device, c.width = width, c.depth = o.depth, c.size = size, c.batch = batch;
      c.warmup = o.warmup, c.steps = steps, c.data_in_step = true;
      row.run = runs.add(c, device);
    }
    rows.push_back(row);
  }
  runs.run(o);
  double cpu_epoch = NAN;
  for (Row& row : rows) {
    row.r = runs.result(row.run);
    row.status = runs.status(row.run, row.device, row.status);
    if (row.r.ok && row.device == "cpu") cpu_epoch = row.r.total_step_s();
  }
  std::vector<std::string> categories;
  std::vector<double> epoch_s, speedup;
  for (const Row& row : rows) {
    const bool ok = row.r.ok;
    const double e = ok ? row.r.total_step_s() : NAN;
    const double x = ok ? cpu_epoch / e : NAN;
    m.table.rows.push_back({row.device, row.status, std::to_string(width), std::to_string(size),
                            std::to_string(batch), std::to_string(steps * batch), format_number(e),
                            format_number(ok ? row.r.median_step_s() : NAN),
                            format_number(steps * batch / e), format_number(x),
                            format_number(ok ? row.r.max_rss_bytes / kMiB : NAN),
                            format_number(ok ? row.r.peak_bytes / kMiB : NAN)});
    categories.push_back(row.device + (is_emu(row.device) ? " (emulated)" : ""));
    epoch_s.push_back(e);
    speedup.push_back(x);
  }
  m.svg = app::svg_grid(
      {app::svg_bar_chart("Time per epoch", "seconds", categories, {{"epoch", epoch_s}}),
       app::svg_bar_chart("Speedup over the CPU", "x", categories, {{"speedup", speedup}})});
  m.notes =
      "An epoch is " + std::to_string(steps) +
      " training steps (forward, Dice+BCE loss, backward, "
      "Adam) on the built-in blob task, each drawing its batch (data generation is inside the "
      "time), after " +
      std::to_string(o.warmup) +
      " untimed warm-up step(s). speedup_vs_cpu = "
      "cpu epoch_s / epoch_s. cuda-emu runs the CUDA kernels on the CPU: its time is the "
      "emulator's, not GPU time. cuda rows are measured only where a GPU is present.\n";
  return m;
}

}  // namespace ich::bench
