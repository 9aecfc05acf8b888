// bench allocator: the caching allocator on vs off; on a GPU also our im2col convolution vs
// cuDNN and our SGEMM vs cuBLAS (the child's peers task).
#include <cmath>
#include <cstdio>

#include "apps/svg_plot.h"
#include "bench/harness/modes.h"
#include "core/error.h"

namespace ich::bench {

namespace {

// The peers: our im2col convolution (with our SGEMM and with cuBLAS) vs cuDNN, our SGEMM vs
// cuBLAS. Only a GPU can time them; cuda-emu's time says nothing about either.
constexpr int kConvBatch = 4, kConvChannels = 64, kConvSide = 160;

// The peer rows: measured when `gpu` is "" and the child succeeded, else one row per variant
// with the reason.
void add_peer_rows(const AlternatingRuns& runs, size_t peers_run, std::string gpu, Table* table) {
  if (gpu.empty()) {
    const BenchResult r = runs.result(peers_run);
    if (r.ok) {
      for (const PeerTiming& p : r.peers)
        table->rows.push_back(
            {p.op, "cuda", p.variant,
             std::isfinite(p.ms) ? kMeasured : "not measured: no cuDNN in this build",
             format_number(p.ms), "", "", "", ""});
      return;
    }
    gpu = "failed: " + r.error;
  }
  char conv[96];
  std::snprintf(conv, sizeof conv, "conv3x3 %dx%dx%dx%d->%d fwd", kConvBatch, kConvChannels,
                kConvSide, kConvSide, kConvChannels);
  for (const char* v : {"im2col+our SGEMM", "im2col+cuBLAS", "cuDNN"})
    table->rows.push_back({conv, "cuda", v, gpu, "", "", "", "", ""});
  for (const char* v : {"our SGEMM", "cuBLAS"})
    table->rows.push_back({"sgemm 1024x1024x1024", "cuda", v, gpu, "", "", "", "", ""});
}

}  // namespace

ModeOutput bench_allocator(const Options& o) {
  //                                   width size batch steps
  const StepSettings s = o.resolve({16, 64, 4, 3, 0}, {8, 32, 2, 2, 0});
  const int width = s.width, size = s.size, batch = s.batch, steps = s.steps;
  ModeOutput m("allocator",
               "Caching allocator on vs off; our convolution and SGEMM vs cuDNN and cuBLAS",
               {"what", "device", "variant", "status", "time_ms", "allocs_per_step",
                "cache_hits_per_step", "tensor_peak_mib", "peak_rss_mib"});
  std::printf("bench allocator: U-Net width %d, batch %d of %dx%d\n", width, batch, size, size);
  const std::string step_what = "train step w" + std::to_string(width) + " b" +
                                std::to_string(batch) + " " + std::to_string(size) + "x" +
                                std::to_string(size);
  std::vector<std::string> devices;
  for (const std::string& d : o.devices_or({"cuda-emu", "cuda"}))
    if (is_emu(d) || is_cuda(d)) devices.push_back(d);
  ICH_CHECK(!devices.empty(),
            "bench allocator: the caching allocator is the CUDA backend's: --devices must name "
            "cuda-emu or cuda");
  AlternatingRuns runs;
  std::vector<size_t> step_runs;
  for (const std::string& device : devices)
    for (int caching : {1, 0}) {
      size_t run = AlternatingRuns::kNone;
      if (unavailable(device).empty()) {
        BenchConfig c;
        c.device = device, c.width = width, c.depth = o.depth, c.size = size, c.batch = batch;
        c.warmup = o.warmup, c.steps = steps, c.caching = caching;
        run = runs.add(c, device + ", caching " + (caching ? "on" : "off"));
      }
      step_runs.push_back(run);
    }
  const std::string gpu = unavailable("cuda");
  size_t peers_run = AlternatingRuns::kNone;
  if (gpu.empty()) {
    BenchConfig c;
    c.task = "peers", c.device = "cuda", c.width = kConvChannels, c.size = kConvSide;
    c.batch = kConvBatch, c.steps = 10;
    peers_run = runs.add(c, "cuda: conv and gemm peers");
  }
  runs.run(o);
  std::vector<std::string> categories;
  std::vector<double> on_ms, off_ms, on_allocs, off_allocs;
  size_t next_run = 0;
  for (const std::string& device : devices) {
    const std::string missing = unavailable(device);
    categories.push_back(device + (is_emu(device) ? " (emulated)" : ""));
    for (int caching : {1, 0}) {
      const size_t run = step_runs.at(next_run++);
      const BenchResult r = runs.result(run);
      const double ms = r.ok ? 1e3 * r.median_step_s() : NAN;
      m.table.rows.push_back({step_what, device, caching ? "caching on" : "caching off",
                              runs.status(run, device, missing), format_number(ms),
                              format_number(r.ok ? r.allocs_per_step : NAN),
                              format_number(r.ok ? r.hits_per_step : NAN),
                              format_number(r.ok ? r.peak_bytes / kMiB : NAN),
                              format_number(r.ok ? r.max_rss_bytes / kMiB : NAN)});
      (caching ? on_ms : off_ms).push_back(ms);
      (caching ? on_allocs : off_allocs).push_back(r.ok ? r.allocs_per_step : NAN);
    }
  }
  add_peer_rows(runs, peers_run, gpu, &m.table);
  m.svg =
      app::svg_grid({app::svg_bar_chart("Time per training step", "ms", categories,
                                        {{"caching on", on_ms}, {"caching off", off_ms}}),
                     app::svg_bar_chart("Device allocations per step", "calls", categories,
                                        {{"caching on", on_allocs}, {"caching off", off_allocs}})});
  m.notes =
      "Caching off sets ICH_CUDA_CACHING_ALLOCATOR=0 in the child: every allocation is a "
      "cudaMalloc (on cuda-emu, the emulator's host allocation). allocs_per_step and "
      "cache_hits_per_step are counted by the allocator over " +
      std::to_string(steps) +
      " timed steps. On cuda-emu the time is the emulator's on the CPU, not GPU time: "
      "it shows the allocation counts, not what caching buys on a GPU. Convolution and SGEMM "
      "peers are device time (CUDA events), the median of 10 runs, measured only on a GPU.\n";
  return m;
}

}  // namespace ich::bench
