// bench threads: CPU thread scaling 1..nproc, the speedup over 1 thread, and the GPU over each.
#include <cmath>
#include <cstdio>

#include "apps/svg_plot.h"
#include "bench/harness/machine.h"
#include "bench/harness/modes.h"

namespace ich::bench {

ModeOutput bench_threads(const Options& o) {
  //                                   width size batch steps
  const StepSettings s = o.resolve({64, 160, 4, 3, 0}, {16, 64, 4, 2, 0});
  const int width = s.width, size = s.size, batch = s.batch, steps = s.steps;
  std::vector<int> threads = o.threads;
  if (threads.empty())
    for (long t = 1; t <= online_cpus(); ++t) threads.push_back(int(t));
  ModeOutput m("threads", "CPU thread scaling, and the GPU over each",
               {"threads", "status", "width", "size", "batch", "step_s", "speedup_vs_1_thread",
                "gpu_step_s", "gpu_speedup_over_cpu"});
  std::printf("bench threads: U-Net width %d, batch %d of %dx%d\n", width, batch, size, size);
  BenchConfig c;
  c.device = "cpu", c.width = width, c.depth = o.depth, c.size = size, c.batch = batch;
  c.warmup = o.warmup, c.steps = steps;
  AlternatingRuns runs;
  std::string gpu_status = unavailable("cuda");
  size_t gpu_run = AlternatingRuns::kNone;
  if (gpu_status.empty()) {
    BenchConfig g = c;
    g.device = "cuda";
    gpu_run = runs.add(g, "cuda");
  }
  std::vector<size_t> cpu_runs;
  for (int t : threads) {
    c.threads = t;
    cpu_runs.push_back(runs.add(c, "cpu, " + std::to_string(t) + " thread(s)"));
  }
  runs.run(o);
  double gpu_step = NAN;
  if (gpu_status.empty()) {
    const BenchResult r = runs.result(gpu_run);
    gpu_step = r.ok ? r.median_step_s() : NAN;
    gpu_status = r.ok ? "" : "failed: " + r.error;
  }
  double one = NAN;
  std::vector<double> x, step_s, speedup, ideal;
  for (size_t k = 0; k < threads.size(); ++k) {
    const int t = threads[k];
    const BenchResult r = runs.result(cpu_runs[k]);
    const double step = r.ok ? r.median_step_s() : NAN;
    if (t == 1) one = step;
    x.push_back(t);
    step_s.push_back(step);
    speedup.push_back(one / step);
    ideal.push_back(t);
    m.table.rows.push_back({std::to_string(t), r.ok ? kMeasured : "failed: " + r.error,
                            std::to_string(width), std::to_string(size), std::to_string(batch),
                            format_number(step), format_number(one / step),
                            gpu_status.empty() ? format_number(gpu_step) : gpu_status,
                            gpu_status.empty() ? format_number(step / gpu_step) : gpu_status});
  }
  m.svg = app::svg_grid({app::svg_line_chart("Time per training step", "CPU threads", x,
                                             {{"cpu", step_s}}, "seconds"),
                         app::svg_line_chart("Speedup over 1 thread", "CPU threads", x,
                                             {{"measured", speedup}, {"ideal", ideal}}, "x")});
  m.notes =
      "Threads = OMP_NUM_THREADS = OPENBLAS_NUM_THREADS of the child. step_s is the median of " +
      std::to_string(steps) + " training steps after " + std::to_string(o.warmup) +
      " warm-up step(s). gpu_speedup_over_cpu = step_s / gpu_step_s (the same step on cuda:0), "
      "measured only where a GPU is present.\n";
  return m;
}

}  // namespace ich::bench
