#include <chrono>
#include <cmath>
#include <cstdio>

#include "bench/harness/child.h"
#include "core/error.h"
#include "data/blobs.h"
#include "engine/optim.h"
#include "kernels/backend.h"
#include "models/unet.h"

namespace ich::bench {

int child_main(const std::vector<std::string>& words) {
  const BenchConfig c = BenchConfig::from_args(words);
  return c.task == "peers" ? measure_peers(c) : measure_training(c);
}

int measure_training(const BenchConfig& c) {
  using Clock = std::chrono::steady_clock;
  const Device device = Device::parse(c.device);
  ICH_CHECK(backend_available(device), "device " << c.device << " is not available here");
  UnetConfig config;
  config.width = c.width;
  config.depth = c.depth;
  config.validate();
  Unet net(config, 1);
  net.to(device);
  Adam adam(net.named_parameters());
  const Shape shape{c.batch, 1, c.size, c.size};
  const BlobBatch fixed = make_blob_batch(c.batch, c.size, 1, 0);
  auto step = [&](int i) {
    const BlobBatch drawn =
        c.data_in_step ? make_blob_batch(c.batch, c.size, 1, uint64_t(i) * c.batch) : BlobBatch{};
    const BlobBatch& b = c.data_in_step ? drawn : fixed;
    const Tensor x = Tensor::from_host(b.images, shape, device);
    const Tensor y = Tensor::from_host(b.masks, shape, device);
    adam.zero_grad();
    const Tensor loss = dice_bce_loss(net.forward(x), y);
    loss.backward();
    adam.step();
    const float v = loss.item();  // waits for the device
    ICH_CHECK(std::isfinite(v), "the loss is " << v << " at step " << i);
  };
  Backend& backend = backend_for(device);
  for (int i = 0; i < c.warmup; ++i) step(i);
  const MemoryStats before = backend.memory_stats();
  std::vector<double> times;
  for (int i = 0; i < c.steps; ++i) {
    const auto t0 = Clock::now();
    step(c.warmup + i);
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const MemoryStats after = backend.memory_stats();
  std::printf("ich-bench-result step_s=");
  for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.9g", i ? ";" : "", times[i]);
  std::printf(" allocs_per_step=%.9g hits_per_step=%.9g peak_bytes=%zu\n",
              double(after.device_alloc_calls - before.device_alloc_calls) / c.steps,
              double(after.cache_hits - before.cache_hits) / c.steps, after.peak_bytes_in_use);
  return 0;
}

}  // namespace ich::bench
