// bench sweep: image size x batch size, time per image and peak memory, per device.
#include <cmath>
#include <cstdio>

#include "apps/svg_plot.h"
#include "bench/harness/modes.h"

namespace ich::bench {

namespace {

// One configuration of the grid: what runs, or why it is skipped.
struct Cell {
  std::string device, skipped;
  int size, batch;
  double estimate;
  size_t run = AlternatingRuns::kNone;
};

std::vector<Cell> plan_cells(const Options& o, int width, int steps, const std::vector<int>& sizes,
                             const std::vector<int>& batches, AlternatingRuns* runs) {
  const double limit = o.mem_limit_gb * kGiB;
  std::vector<Cell> cells;
  for (const std::string& device : o.devices_or({"cpu", "cuda"}))
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
          cell.run = runs->add(c, device + " " + std::to_string(size) + "x" + std::to_string(size) +
                                      " batch " + std::to_string(batch));
        }
        cells.push_back(cell);
      }
  return cells;
}

}  // namespace

ModeOutput bench_sweep(const Options& o) {
  const StepSettings s = o.resolve({64, 0, 0, 2, 0}, {16, 0, 0, 1, 0});  // width, steps
  const int width = s.width, steps = s.steps;
  const std::vector<int> sizes = !o.sizes.empty() ? o.sizes
                                 : o.quick        ? std::vector<int>{32, 64, 128}
                                                  : std::vector<int>{32, 64, 128, 180, 200};
  const std::vector<int> batches = !o.batches.empty() ? o.batches
                                   : o.quick          ? std::vector<int>{10, 20}
                                                      : std::vector<int>{10, 20, 50, 100, 150};
  ModeOutput m("sweep", "Image size x batch size: time per image and peak memory, per device",
               {"device", "status", "width", "size", "batch", "ms_per_image", "step_s",
                "peak_rss_mib", "tensor_peak_mib", "estimate_mib"});
  std::printf("bench sweep: U-Net width %d, memory limit %.1f GiB\n", width, o.mem_limit_gb);
  // First the plan (what runs, what is skipped and why), then the rounds, then the rows.
  AlternatingRuns runs;
  const std::vector<Cell> cells = plan_cells(o, width, steps, sizes, batches, &runs);
  runs.run(o);
  std::vector<std::string> charts;
  size_t next_cell = 0;
  for (const std::string& device : o.devices_or({"cpu", "cuda"})) {
    std::vector<app::Series> time_series, memory_series;
    std::vector<double> x(batches.begin(), batches.end());
    for (int size : sizes) {
      app::Series t{std::to_string(size) + "x" + std::to_string(size), {}}, mem{t.name, {}};
      for (int batch : batches) {
        const Cell& cell = cells.at(next_cell++);
        const BenchResult r = runs.result(cell.run);
        const std::string status = runs.status(cell.run, device, cell.skipped);
        const double step = r.ok ? r.median_step_s() : NAN;
        // On a GPU the memory that limits the batch is the device's: the tensor peak.
        const double memory = r.ok ? (is_cuda(device) ? r.peak_bytes : r.max_rss_bytes) : NAN;
        m.table.rows.push_back(
            {device, status, std::to_string(width), std::to_string(size), std::to_string(batch),
             format_number(1e3 * step / batch), format_number(step),
             format_number(r.ok ? r.max_rss_bytes / kMiB : NAN),
             format_number(r.ok ? r.peak_bytes / kMiB : NAN), format_number(cell.estimate / kMiB)});
        t.y.push_back(1e3 * step / batch);
        mem.y.push_back(memory / kMiB);
      }
      time_series.push_back(t);
      memory_series.push_back(mem);
    }
    if (!unavailable(device).empty()) continue;
    const std::string label = device + (is_emu(device) ? " (emulated)" : "");
    charts.push_back(app::svg_line_chart(label + ": time per image", "batch size", x, time_series,
                                         "ms per image"));
    charts.push_back(app::svg_line_chart(
        label + (is_cuda(device) ? ": peak device memory" : ": peak resident memory"), "batch size",
        x, memory_series, "MiB"));
  }
  if (charts.empty())
    charts.push_back(app::svg_line_chart("no device measured", "batch size", {}, {}));
  m.svg = app::svg_grid(charts);
  m.notes =
      "Each row is one child process per round: " + std::to_string(o.warmup) +
      " untimed warm-up step(s), then the median of " + std::to_string(steps) +
      " timed training step(s) on one fixed batch "
      "of the blob task. peak_rss_mib is the child's peak resident set (wait4); tensor_peak_mib "
      "the backend's peak bytes in use (tensors and workspaces; on cuda, device memory). "
      "estimate_mib is the estimate checked against --mem-limit-gb before a configuration runs "
      "(bench/harness/measurement.cpp, estimate_train_bytes).\n";
  return m;
}

}  // namespace ich::bench
