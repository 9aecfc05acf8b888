// ichseg demo [--steps N] [--width W] [--seed S] [--device cpu|cuda-emu|cuda]
//
// The engine end to end in well under a minute on a CPU: a small medicaltorch U-Net learns
// the synthetic blob task (bright discs on a noisy background -> their masks, drawn in
// memory by data/blobs.h) with Adam and Dice + BCE, then is scored on held-out images.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "data/blobs.h"
#include "engine/metrics.h"
#include "engine/optim.h"
#include "models/unet.h"

namespace {

using Clock = std::chrono::steady_clock;

// Training draws samples 0, 1, 2, ... of the task; validation uses another task seed, so
// no validation image is ever seen in training.
constexpr uint64_t kValidationSeedOffset = 1'000'003;

int run_demo(int argc, char** argv) {
  CLI::App app{"Train a small U-Net on a synthetic blob task held in memory (the engine's demo)",
               "ichseg demo"};
  int steps = 150, width = 8, depth = 3, size = 32, batch = 8, log_every = 10, val_images = 64;
  uint64_t seed = 1;
  float lr = 3e-3f;
  std::string device_name = "cpu";
  app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--width", width, "channels of the first level (the paper: 64)")
      ->check(CLI::PositiveNumber);
  app.add_option("--depth", depth, "pooling levels (the paper: 3)")->check(CLI::Range(1, 6));
  app.add_option("--size", size, "image side in pixels")->check(CLI::Range(8, 1024));
  app.add_option("--batch", batch, "images per step")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed of the weights, dropout and data");
  app.add_option("--device", device_name, "cpu, cuda-emu or cuda[:N]");
  app.add_option("--log-every", log_every, "print every N steps")->check(CLI::PositiveNumber);
  app.add_option("--val-images", val_images, "held-out images scored at the end")
      ->check(CLI::PositiveNumber);
  if (const int code = ich::app::parse_command_line(app, argc, argv); code >= 0) return code;
  const ich::Device device = ich::Device::parse(device_name);

  ich::UnetConfig config;
  config.width = width;
  config.depth = depth;
  config.drop_rate = 0.1f;  // the task is small; the paper's 0.4 slows the demo down
  ich::Unet net(config, seed);
  net.to(device);
  ich::AdamOptions adam_options;
  adam_options.lr = lr;
  ich::Adam adam(net.named_parameters(), adam_options);
  ich::LrSchedule schedule;
  schedule.kind = ich::LrScheduleKind::cosine;
  schedule.base_lr = lr;
  schedule.total_steps = steps;
  std::printf("ichseg demo: %s, %lld parameters, on %s; %d steps of %d images %dx%d\n",
              config.str().c_str(), static_cast<long long>(net.parameter_count()),
              device.str().c_str(), steps, batch, size, size);

  const ich::Shape shape{batch, 1, size, size};
  const auto start = Clock::now();
  auto window_start = start;
  int window_images = 0;
  for (int step = 1; step <= steps; ++step) {
    const ich::BlobBatch b = ich::make_blob_batch(batch, size, seed, uint64_t(step - 1) * batch);
    const ich::Tensor x = ich::Tensor::from_host(b.images, shape, device);
    const ich::Tensor y = ich::Tensor::from_host(b.masks, shape, device);
    adam.set_lr(schedule.at(step - 1));
    adam.zero_grad();
    const ich::Tensor prob = net.forward(x);
    const ich::Tensor loss = ich::dice_bce_loss(prob, y);
    loss.backward();
    adam.step();
    window_images += batch;
    if (step % log_every == 0 || step == steps) {
      ich::check_finite(loss, "step " + std::to_string(step));
      const std::vector<float> p = prob.to_host();
      const double dice = ich::segmentation_metrics(p.data(), b.masks.data(), p.size()).dice;
      const auto now = Clock::now();
      const double seconds = std::chrono::duration<double>(now - window_start).count();
      std::printf("step %4d  loss %+.4f  dice %.4f  %.1f images/s  lr %.2e\n", step, loss.item(),
                  dice, window_images / seconds, double(adam.lr()));
      std::fflush(stdout);
      window_start = now;
      window_images = 0;
    }
  }
  const double train_seconds = std::chrono::duration<double>(Clock::now() - start).count();

  net.eval();
  ich::NoGradGuard no_grad;
  ich::ConfusionCounts total;
  std::vector<double> per_image;
  for (int first = 0; first < val_images; first += batch) {
    const int n = std::min(batch, val_images - first);
    const ich::BlobBatch v =
        ich::make_blob_batch(n, size, seed + kValidationSeedOffset, uint64_t(first));
    const std::vector<float> p =
        net.forward(ich::Tensor::from_host(v.images, {n, 1, size, size}, device)).to_host();
    const size_t plane = size_t(size) * size;
    for (int i = 0; i < n; ++i) {
      const ich::ConfusionCounts c =
          ich::confusion_counts(p.data() + i * plane, v.masks.data() + i * plane, plane);
      per_image.push_back(ich::segmentation_metrics(c).dice);
      total += c;
    }
  }
  const ich::Summary s = ich::summarize(per_image);
  std::printf(
      "trained in %.1f s; validation on %d held-out images: Dice %.4f (per image mean "
      "%.4f, min %.4f, max %.4f)\n",
      train_seconds, val_images, ich::segmentation_metrics(total).dice, s.mean, s.min, s.max);
  return 0;
}

}  // namespace

ICH_COMMAND("demo", "train a small U-Net on a synthetic blob task in memory (about 30 s on a CPU)",
            run_demo);
