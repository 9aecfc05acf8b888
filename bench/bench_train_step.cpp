// The U-Net training step (forward + backward + Adam) and inference forward at the ICH
// paper's patch size: batch 4, 1x160x160, widths 64 (the paper's 64-128-256-256) and 16
// (16-32-64-64), depth 3, Dice loss. Runs on the CPU (OpenMP threads = cores unless
// OMP_NUM_THREADS says otherwise), and on cuda when a GPU is present; on cuda also the step
// at batch 32, width 64.
//
//   build/bench/ich_bench --benchmark_filter='Unet'
//
// With ICH_PROFILE=1 each run prints, after its timed loop, the per-primitive profile of the
// steps it timed (core/profile.h) and the process's peak resident set size.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "core/profile.h"
#include "data/blobs.h"
#include "engine/optim.h"
#include "kernels/cpu/cpu_backend.h"
#include "models/unet.h"

namespace {

constexpr int kBatch = 4;
constexpr int kSize = 160;

struct Setup {
  std::unique_ptr<ich::Unet> net;
  ich::Tensor x, y;
};

Setup make_setup(int width, const ich::Device& device, int batch = kBatch, int size = kSize) {
  ich::UnetConfig config;
  config.width = width;
  Setup s;
  s.net = std::make_unique<ich::Unet>(config, 1);
  s.net->to(device);
  const ich::BlobBatch b = ich::make_blob_batch(batch, size, 1, 0);
  s.x = ich::Tensor::from_host(b.images, {batch, 1, size, size}, device);
  s.y = ich::Tensor::from_host(b.masks, {batch, 1, size, size}, device);
  return s;
}

void add_memory_counters(benchmark::State& state) {
  state.counters["peak_rss_MiB"] = double(ich::profile::peak_rss_bytes()) / (1024.0 * 1024.0);
}

// Wall time of the timed loop, for the profile's "% of step" column.
struct ProfileRun {
  const char* what;
  int width;
  std::chrono::steady_clock::time_point start;
  explicit ProfileRun(const char* w, int wd) : what(w), width(wd) {
    ich::profile::reset();
    start = std::chrono::steady_clock::now();
  }
  void print(int64_t iterations) const {
    if (!ich::profile::enabled() || iterations == 0) return;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\nprofile: %s width %d, %lld steps\n%s", what, width,
                 static_cast<long long>(iterations),
                 ich::profile::report(ms / double(iterations), iterations).c_str());
  }
};

void train_step(Setup& s, ich::Adam& adam) {
  adam.zero_grad();
  const ich::Tensor loss = ich::soft_dice_loss(s.net->forward(s.x), s.y);
  loss.backward();
  adam.step();
  benchmark::DoNotOptimize(loss.item());  // waits for the device
}

void unet_train_step_of(benchmark::State& state, ich::Device device, int batch) {
  Setup s = make_setup(static_cast<int>(state.range(0)), device, batch);
  ich::Adam adam(s.net->named_parameters());
  train_step(s, adam);  // warm-up: first-touch of the step's memory, Adam state
  const ProfileRun profile("train step", static_cast<int>(state.range(0)));
  for (auto _ : state) train_step(s, adam);
  profile.print(static_cast<int64_t>(state.iterations()));
  state.counters["images/s"] =
      benchmark::Counter(double(state.iterations()) * batch, benchmark::Counter::kIsRate);
  state.counters["params"] = double(s.net->parameter_count());
  add_memory_counters(state);
}

void unet_train_step(benchmark::State& state, ich::Device device) {
  unet_train_step_of(state, device, kBatch);
}

// The batch as the second argument (the GPU's larger batches).
void unet_train_step_batch(benchmark::State& state, ich::Device device) {
  unet_train_step_of(state, device, static_cast<int>(state.range(1)));
}

// Inference of batch 4 at 160x160 (range(1) == 0), or of one whole 512x512 slice.
void unet_forward(benchmark::State& state, ich::Device device) {
  const bool slice = state.range(1) != 0;
  Setup s =
      make_setup(static_cast<int>(state.range(0)), device, slice ? 1 : kBatch, slice ? 512 : kSize);
  s.net->eval();
  ich::NoGradGuard no_grad;
  auto infer = [&] {
    const ich::Tensor p = s.net->forward(s.x);
    p.backend().synchronize();
    benchmark::DoNotOptimize(p.raw_data());
  };
  infer();  // warm-up
  const ProfileRun profile("inference", static_cast<int>(state.range(0)));
  for (auto _ : state) infer();
  profile.print(static_cast<int64_t>(state.iterations()));
  state.counters["images/s"] = benchmark::Counter(double(state.iterations()) * double(s.x.dim(0)),
                                                  benchmark::Counter::kIsRate);
  add_memory_counters(state);
}

// Registered at start-up so that cuda cases appear only where a GPU is present.
const bool registered = [] {
  // (bench_main.cpp adds the OpenBLAS kernel family, which decides most of the CPU step, to
  // the context lines.)
  std::vector<ich::Device> devices{ich::Device::cpu()};
  if (ich::backend_available(ich::Device::cuda())) devices.push_back(ich::Device::cuda());
  for (const ich::Device& d : devices) {
    const std::string suffix = "/" + d.str();
    benchmark::RegisterBenchmark(("UnetTrainStep" + suffix).c_str(), unet_train_step, d)
        ->ArgName("width")
        ->Arg(64)
        ->Arg(16)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("UnetForward" + suffix).c_str(), unet_forward, d)
        ->ArgNames({"width", "slice512"})
        ->Args({64, 0})
        ->Args({16, 0})
        ->Args({64, 1})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    // Batch 32 only on the GPU: on the CPU it costs eight batch-4 steps and says nothing new.
    if (d.kind == ich::DeviceKind::cuda)
      benchmark::RegisterBenchmark(("UnetTrainStep" + suffix).c_str(), unet_train_step_batch, d)
          ->ArgNames({"width", "batch"})
          ->Args({64, 32})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  }
  return true;
}();

}  // namespace
