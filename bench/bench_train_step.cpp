// The U-Net training step (forward + backward + Adam) and inference forward at the ICH
// paper's patch size: batch 4, 1x160x160, widths 64 (the paper's 64-128-256-256) and 16
// (16-32-64-64), depth 3, Dice loss. Runs on the CPU (OpenMP threads = cores unless
// OMP_NUM_THREADS says otherwise), and on cuda when a GPU is present.
//
//   build/bench/ich_bench --benchmark_filter='Unet'
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "engine/optim.h"
#include "models/blobs.h"
#include "models/unet.h"

namespace {

constexpr int kBatch = 4;
constexpr int kSize = 160;

struct Setup {
  std::unique_ptr<ich::Unet> net;
  ich::Tensor x, y;
};

Setup make_setup(int width, const ich::Device& device) {
  ich::UnetConfig config;
  config.width = width;
  Setup s;
  s.net = std::make_unique<ich::Unet>(config, 1);
  s.net->to(device);
  const ich::BlobBatch b = ich::make_blob_batch(kBatch, kSize, 1, 0);
  s.x = ich::Tensor::from_host(b.images, {kBatch, 1, kSize, kSize}, device);
  s.y = ich::Tensor::from_host(b.masks, {kBatch, 1, kSize, kSize}, device);
  return s;
}

void unet_train_step(benchmark::State& state, ich::Device device) {
  Setup s = make_setup(static_cast<int>(state.range(0)), device);
  ich::Adam adam(s.net->named_parameters());
  for (auto _ : state) {
    adam.zero_grad();
    const ich::Tensor loss = ich::soft_dice_loss(s.net->forward(s.x), s.y);
    loss.backward();
    adam.step();
    benchmark::DoNotOptimize(loss.item());  // waits for the device
  }
  state.counters["images/s"] =
      benchmark::Counter(double(state.iterations()) * kBatch, benchmark::Counter::kIsRate);
  state.counters["params"] = double(s.net->parameter_count());
}

void unet_forward(benchmark::State& state, ich::Device device) {
  Setup s = make_setup(static_cast<int>(state.range(0)), device);
  s.net->eval();
  ich::NoGradGuard no_grad;
  for (auto _ : state) {
    const ich::Tensor p = s.net->forward(s.x);
    p.backend().synchronize();
    benchmark::DoNotOptimize(p.raw_data());
  }
  state.counters["images/s"] =
      benchmark::Counter(double(state.iterations()) * kBatch, benchmark::Counter::kIsRate);
}

// Registered at start-up so that cuda cases appear only where a GPU is present.
const bool registered = [] {
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
        ->ArgName("width")
        ->Arg(64)
        ->Arg(16)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace
