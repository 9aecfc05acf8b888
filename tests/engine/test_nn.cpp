// Modules: names, init, batch-norm buffers, train/eval, state loading, devices.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/nn.h"

using namespace ich;

namespace {

class Block : public Module {
 public:
  explicit Block(Generator& init) {
    conv = register_module("conv", std::make_shared<Conv2d>(2, 3, 3, 1, init));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(3));
  }
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
};

class Net : public Module {
 public:
  explicit Net(uint64_t seed) : init(seed) {
    block = register_module("block", std::make_shared<Block>(init));
    head = register_module("head", std::make_shared<Conv2d>(3, 1, 1, 0, init));
  }
  Generator init;
  std::shared_ptr<Block> block;
  std::shared_ptr<Conv2d> head;
};

std::vector<std::string> names(const NamedTensors& entries) {
  std::vector<std::string> out;
  for (const auto& [n, t] : entries) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("nn: dotted names in PyTorch's state_dict order and parameter count", "[nn]") {
  Net net(1);
  CHECK(names(net.state_dict()) ==
        std::vector<std::string>{"block.conv.weight", "block.conv.bias", "block.bn.weight",
                                 "block.bn.bias", "block.bn.running_mean", "block.bn.running_var",
                                 "block.bn.num_batches_tracked", "head.weight", "head.bias"});
  CHECK(names(net.named_parameters()).size() == 6);
  CHECK(names(net.named_buffers()) == std::vector<std::string>{"block.bn.running_mean",
                                                               "block.bn.running_var",
                                                               "block.bn.num_batches_tracked"});
  CHECK(net.parameter_count() == (3 * 2 * 9 + 3) + (3 + 3) + (1 * 3 + 1));
  CHECK(net.block->bn->num_batches_tracked.dtype() == DType::i64);
}

TEST_CASE("nn: Conv2d init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and seeded", "[nn]") {
  Generator g1(5), g2(5), g3(6);
  const Conv2d a(4, 8, 3, 1, g1), b(4, 8, 3, 1, g2), c(4, 8, 3, 1, g3);
  const float bound = 1.0f / 6.0f;  // fan_in = 4 * 3 * 3 = 36
  const std::vector<float> w = a.weight.to_host();
  float lo = 1, hi = -1;
  for (float v : w) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -bound);
  CHECK(hi < bound);
  CHECK(hi - lo > 1.8f * bound);  // 288 draws span the interval
  for (float v : a.bias.to_host()) CHECK(std::fabs(v) <= bound);
  CHECK(g1.offset == 8 * 4 * 9 + 8);
  CHECK(a.weight.to_host() == b.weight.to_host());
  CHECK(a.weight.to_host() != c.weight.to_host());
}

TEST_CASE("nn: BatchNorm2d updates running stats in train mode only", "[nn]") {
  BatchNorm2d bn(1, 0.1f);
  // one channel, values 1..4: mean 2.5, unbiased var 5/3
  const Tensor x = Tensor::from_host(std::vector<float>{1, 2, 3, 4}, {1, 1, 2, 2});
  const std::vector<float> y = bn.forward(x).to_host();
  CHECK(y[0] == Approx(-1.5 / std::sqrt(1.25 + 1e-5)));
  CHECK(bn.running_mean.to_host()[0] == Approx(0.25f));
  CHECK(bn.running_var.to_host()[0] == Approx(0.9f + 0.1f * 5.0f / 3.0f));
  CHECK(bn.num_batches_tracked.to_host<int64_t>()[0] == 1);
  bn.eval();
  const std::vector<float> ye = bn.forward(x).to_host();
  CHECK(ye[3] == Approx((4.0 - 0.25) / std::sqrt(0.9 + 0.5 / 3.0 + 1e-5)));
  CHECK(bn.num_batches_tracked.to_host<int64_t>()[0] == 1);
  CHECK(bn.running_mean.to_host()[0] == Approx(0.25f));
}

TEST_CASE("nn: train/eval propagates, zero_grad drops grads", "[nn]") {
  Net net(2);
  net.eval();
  CHECK_FALSE(net.block->bn->is_training());
  net.train();
  CHECK(net.block->bn->is_training());
  const Tensor x = Tensor::from_host(std::vector<float>(2 * 2 * 4 * 4, 0.5f), {2, 2, 4, 4});
  sum(net.head->forward(net.block->bn->forward(net.block->conv->forward(x)))).backward();
  for (const auto& [name, p] : net.named_parameters()) CHECK(p.grad().defined());
  net.zero_grad();
  for (const auto& [name, p] : net.named_parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("nn: load_state_dict copies values and names what does not match", "[nn]") {
  Net a(3), b(4);
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : a.state_dict()) state.emplace(name, t);
  b.load_state_dict(state);
  CHECK(b.head->weight.to_host() == a.head->weight.to_host());
  CHECK(b.block->conv->bias.to_host() == a.block->conv->bias.to_host());

  auto missing = state;
  missing.erase("head.bias");
  missing.emplace("head.extra", Tensor::zeros({1}));
  CHECK_THROWS_WITH(b.load_state_dict(missing), Catch::Contains("missing 'head.bias'") &&
                                                    Catch::Contains("unexpected 'head.extra'"));
  auto wrong = state;
  wrong["head.weight"] = Tensor::zeros({2, 3, 1, 1});
  const std::vector<float> before = b.block->conv->weight.to_host();
  CHECK_THROWS_WITH(b.load_state_dict(wrong),
                    Catch::Contains("'head.weight'") && Catch::Contains("(2, 3, 1, 1)"));
  CHECK(b.block->conv->weight.to_host() == before);  // nothing written on failure
}

TEST_CASE("nn: to(device) moves every parameter and buffer", "[nn]") {
  if (!backend_available(Device::cuda_emu())) {
    WARN("cuda-emu is not in this build; Module::to needs a second device");
    return;
  }
  Net net(7);
  const std::vector<float> w = net.head->weight.to_host();
  net.to(Device::cuda_emu());
  for (const auto& [name, t] : net.state_dict()) CHECK(t.device() == Device::cuda_emu());
  CHECK(net.head->weight.requires_grad());
  CHECK(net.head->weight.to_host() == w);
  const Tensor x_cpu = Tensor::zeros({1, 3, 2, 2});
  CHECK_THROWS_WITH(net.head->forward(x_cpu), Catch::Contains("different devices"));
}
