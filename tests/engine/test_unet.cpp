// The medicaltorch U-Net: state_dict names and parameter count, shapes, a tiny training
// run on the synthetic blob task (loss falls, Dice passes a threshold, seeds reproduce),
// checkpoints, bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "common/gradcheck.h"
#include "data/blobs.h"
#include "engine/metrics.h"
#include "engine/optim.h"
#include "models/checkpoint.h"
#include "models/unet.h"

using namespace ich;
namespace fs = std::filesystem;

namespace {

int64_t conv3x3(int64_t in, int64_t out) {
  return out * in * 9 + out;
}
int64_t batchnorm(int64_t c) {
  return 2 * c;
}
int64_t downconv(int64_t in, int64_t out) {
  return conv3x3(in, out) + batchnorm(out) + conv3x3(out, out) + batchnorm(out);
}

struct TrainResult {
  float first_loss = 0, last_loss = 0;
  double val_dice = 0;
  std::vector<std::vector<float>> weights;
};

// A width-4, depth-2 U-Net (the same models/unet code as the paper's net) on 16x16 blobs.
TrainResult train_tiny(uint64_t seed, int steps) {
  UnetConfig cfg;
  cfg.width = 4;
  cfg.depth = 2;
  cfg.drop_rate = 0.1f;
  Unet net(cfg, seed);
  AdamOptions opt;
  opt.lr = 0.01f;
  Adam adam(net.named_parameters(), opt);
  TrainResult r;
  const int batch = 8, size = 16;
  for (int step = 0; step < steps; ++step) {
    const BlobBatch b = make_blob_batch(batch, size, 1000, uint64_t(step) * batch);
    const Tensor x = Tensor::from_host(b.images, {batch, 1, size, size});
    const Tensor y = Tensor::from_host(b.masks, {batch, 1, size, size});
    adam.zero_grad();
    const Tensor loss = dice_bce_loss(net.forward(x), y);
    const float value = loss.item();
    if (step == 0) r.first_loss = value;
    r.last_loss = value;
    check_finite(loss, "step " + std::to_string(step));
    loss.backward();
    adam.step();
  }
  net.eval();
  NoGradGuard no_grad;
  const BlobBatch v = make_blob_batch(16, size, 2000, 0);
  const std::vector<float> p =
      net.forward(Tensor::from_host(v.images, {16, 1, size, size})).to_host();
  r.val_dice = segmentation_metrics(p.data(), v.masks.data(), p.size()).dice;
  for (const auto& [name, t] : net.state_dict()) {
    if (t.dtype() == DType::f32) r.weights.push_back(t.to_host());
  }
  return r;
}

}  // namespace

TEST_CASE("unet: state_dict names and parameter count match medicaltorch's Unet()", "[unet]") {
  Unet net;  // width 64, depth 3: the paper's
  const int64_t expected = downconv(1, 64) + downconv(64, 128) + downconv(128, 256) +
                           downconv(256, 256) + downconv(512, 256) + downconv(384, 128) +
                           downconv(192, 64) + conv3x3(64, 1);
  CHECK(net.parameter_count() == expected);
  const NamedTensors state = net.state_dict();
  REQUIRE(state.size() == 7 * 14 + 2);  // 7 DownConvs of 2 convs (2 each) + 2 BNs (5 each)
  const std::vector<std::string> first{"conv1.conv1.weight",
                                       "conv1.conv1.bias",
                                       "conv1.conv1_bn.weight",
                                       "conv1.conv1_bn.bias",
                                       "conv1.conv1_bn.running_mean",
                                       "conv1.conv1_bn.running_var",
                                       "conv1.conv1_bn.num_batches_tracked",
                                       "conv1.conv2.weight"};
  for (size_t i = 0; i < first.size(); ++i) CHECK(state[i].first == first[i]);
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : state) shapes[name] = t.shape();
  CHECK(shapes.at("conv4.conv2.weight") == Shape{256, 256, 3, 3});
  CHECK(shapes.at("up1.downconv.conv1.weight") == Shape{256, 512, 3, 3});
  CHECK(shapes.at("up2.downconv.conv1.weight") == Shape{128, 384, 3, 3});
  CHECK(shapes.at("up3.downconv.conv2_bn.running_var") == Shape{64});
  CHECK(shapes.at("conv9.weight") == Shape{1, 64, 3, 3});
  CHECK(state.back().first == "conv9.bias");
}

TEST_CASE("unet: width and depth options, output shape and range", "[unet]") {
  UnetConfig cfg;
  cfg.width = 16;
  CHECK(Unet(cfg).parameter_count() == downconv(1, 16) + downconv(16, 32) + downconv(32, 64) +
                                           downconv(64, 64) + downconv(128, 64) + downconv(96, 32) +
                                           downconv(48, 16) + conv3x3(16, 1));
  cfg.width = 2;
  cfg.depth = 2;
  Unet net(cfg, 3);
  CHECK(net.named_parameters().back().first == "conv9.bias");
  {
    NoGradGuard no_grad;
    // 18x22 is not a multiple of 4: the decoder upsamples to each skip's size.
    const Tensor y = net.forward(Tensor::zeros({2, 1, 18, 22}));
    CHECK(y.shape() == Shape{2, 1, 18, 22});
    for (float v : y.to_host()) {
      CHECK(v > 0.0f);
      CHECK(v < 1.0f);
    }
  }
  cfg.depth = 7;
  CHECK_THROWS_WITH(Unet(cfg), Catch::Contains("depth 7"));
}

TEST_CASE("unet: a tiny net learns the blob task, and seeds reproduce", "[unet][train]") {
  const TrainResult a = train_tiny(7, 60);
  INFO("loss " << a.first_loss << " -> " << a.last_loss << ", validation Dice " << a.val_dice);
  CHECK(a.last_loss < a.first_loss - 0.5f);
  CHECK(a.val_dice > 0.8);
  const TrainResult b = train_tiny(7, 60);
  CHECK(b.weights == a.weights);  // bit-identical
  CHECK(b.last_loss == a.last_loss);
  const TrainResult c = train_tiny(8, 60);
  CHECK(c.weights != a.weights);
}

TEST_CASE("unet: checkpoints restore weights, Adam and dropout state, other nets are refused",
          "[unet]") {
  const fs::path dir = fs::path(ICH_BINARY_DIR) / "test_tmp" / "unet_checkpoint";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "last.safetensors").string();
  UnetConfig cfg;
  cfg.width = 2;
  cfg.depth = 1;
  Unet net(cfg, 1);
  Adam adam(net.named_parameters());
  const BlobBatch b = make_blob_batch(2, 8, 5, 0);
  const Tensor x = Tensor::from_host(b.images, {2, 1, 8, 8});
  const Tensor y = Tensor::from_host(b.masks, {2, 1, 8, 8});
  soft_dice_loss(net.forward(x), y).backward();
  adam.step();
  save_checkpoint(path, net, &adam, {{"epoch", "4"}});

  Unet restored(cfg, 99);
  Adam restored_adam(restored.named_parameters());
  const auto meta = load_checkpoint(path, restored, &restored_adam);
  CHECK(meta.at("epoch") == "4");
  CHECK(meta.at("unet.width") == "2");
  const NamedTensors s1 = net.state_dict(), s2 = restored.state_dict();
  for (size_t i = 0; i < s1.size(); ++i) {
    INFO(s1[i].first);
    if (s1[i].second.dtype() == DType::f32) CHECK(s1[i].second.to_host() == s2[i].second.to_host());
  }
  CHECK(restored.dropout_generator().seed == net.dropout_generator().seed);
  CHECK(restored.dropout_generator().offset == net.dropout_generator().offset);
  CHECK(restored.dropout_generator().offset > 0);  // the training forward drew masks
  // The next step is identical: same weights, moments, step counts and dropout masks.
  net.zero_grad();
  for (Unet* m : {&net, &restored}) soft_dice_loss(m->forward(x), y).backward();
  adam.step();
  restored_adam.step();
  CHECK(net.named_parameters()[0].second.to_host() ==
        restored.named_parameters()[0].second.to_host());

  UnetConfig other = cfg;
  other.width = 4;
  Unet wider(other);
  CHECK_THROWS_WITH(load_checkpoint(path, wider),
                    Catch::Contains("different U-Net") && Catch::Contains("width 4 vs 2"));
  fs::remove_all(dir);
}

TEST_CASE("unet and losses: bad input is refused with a message", "[unet]") {
  UnetConfig cfg;
  cfg.width = 2;
  cfg.depth = 2;
  Unet net(cfg);
  CHECK_THROWS_WITH(net.forward(Tensor::zeros({1, 3, 8, 8})), Catch::Contains("(N, 1, H, W)"));
  CHECK_THROWS_WITH(net.forward(Tensor::zeros({1, 1, 3, 8})), Catch::Contains("smaller than 4x4"));
  CHECK_THROWS_WITH(soft_dice_loss(Tensor::zeros({1, 1, 4, 4}), Tensor::zeros({1, 1, 4, 5})),
                    Catch::Contains("same shape"));
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({3, 1, 3, 3}), Tensor()),
                    Catch::Contains("2 channels") && Catch::Contains("expects 1"));
  CHECK_THROWS_WITH(add(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
                    Catch::Contains("(2, 3) vs (3, 2)"));
  CHECK_THROWS_WITH(concat_channels(Tensor::zeros({1, 1, 4, 4}), Tensor::zeros({1, 1, 4, 2})),
                    Catch::Contains("N, H, W must match"));
  CHECK_THROWS_WITH(max_pool2d(Tensor::zeros({1, 1, 1, 4})), Catch::Contains("smaller than"));
  CHECK_THROWS_WITH(relu(Tensor::zeros({2}, Device::cpu(), DType::u8)),
                    Catch::Contains("must be float32"));
  const Tensor nan_loss = Tensor::from_host(std::vector<float>{NAN}, {1});
  CHECK_THROWS_WITH(check_finite(nan_loss, "step 12"), Catch::Contains("loss is nan at step 12"));
  const Tensor inf_values = Tensor::from_host(std::vector<float>{1, INFINITY}, {2});
  CHECK_THROWS_WITH(check_finite(inf_values, "validation"), Catch::Contains("element 1"));
  CHECK_NOTHROW(check_finite(Tensor::zeros({3}), "fine"));
}

TEST_CASE("unet: the same training steps on cuda-emu match the CPU", "[unet][device]") {
  if (!backend_available(Device::cuda_emu())) {
    WARN("cuda-emu is not in this build; the engine's device independence is not checked");
    return;
  }
  UnetConfig cfg;
  cfg.width = 2;
  cfg.depth = 1;
  const BlobBatch b = make_blob_batch(2, 8, 11, 0);
  struct Run {
    float loss = 0;
    std::map<std::string, std::vector<float>> grads, weights;
  } runs[2];
  int k = 0;
  for (const Device d : {Device::cpu(), Device::cuda_emu()}) {
    Unet net(cfg, 5);
    net.to(d);
    Adam adam(net.named_parameters());
    const Tensor x = Tensor::from_host(b.images, {2, 1, 8, 8}, d);
    const Tensor y = Tensor::from_host(b.masks, {2, 1, 8, 8}, d);
    for (int step = 0; step < 2; ++step) {
      adam.zero_grad();
      const Tensor loss = dice_bce_loss(net.forward(x), y);
      CHECK(loss.device() == d);
      loss.backward();
      runs[k].loss = loss.item();
      // Gradients of the first step, where both devices start from the same weights.
      for (const auto& [name, p] : net.named_parameters()) {
        CHECK(p.grad().device() == d);
        if (step == 0) runs[k].grads[name] = p.grad().to_host();
      }
      adam.step();
    }
    for (const auto& [name, p] : net.named_parameters()) runs[k].weights[name] = p.to_host();
    ++k;
  }
  CHECK(runs[1].loss == Approx(runs[0].loss).epsilon(1e-4));  // of the second step
  for (const auto& [name, g_cpu] : runs[0].grads) {
    INFO(name);
    const std::vector<float>& g_emu = runs[1].grads.at(name);
    float largest = 0.0f;
    for (size_t i = 0; i < g_cpu.size(); ++i) {
      CHECK(std::fabs(g_emu[i] - g_cpu[i]) <= 1e-3f * std::fabs(g_cpu[i]) + 1e-6f);
      largest = std::max(largest, std::fabs(g_cpu[i]));
    }
    // A conv bias whose channel the ReLU passes whole (or blocks whole) before batch norm
    // has a true gradient of 0: both sides hold rounding noise, which Adam turns into +-lr
    // steps of arbitrary sign. Weights are compared where the gradient is real.
    if (largest < 1e-4f) continue;
    CHECK(ich::test::nmse(runs[1].weights.at(name).data(), runs[0].weights.at(name).data(),
                          g_cpu.size()) < 1e-8);
  }
}
