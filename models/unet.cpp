#include "models/unet.h"

#include <cstdlib>
#include <sstream>

namespace ich {

// ---- config

void UnetConfig::validate() const {
  ICH_CHECK(in_channels >= 1, "unet: in_channels " << in_channels << " must be >= 1");
  ICH_CHECK(width >= 1 && width <= 4096, "unet: width " << width << " must be in [1, 4096]");
  ICH_CHECK(depth >= 1 && depth <= 6, "unet: depth " << depth << " must be in [1, 6]");
  ICH_CHECK(drop_rate >= 0.0f && drop_rate < 1.0f,
            "unet: drop_rate " << drop_rate << " must be in [0, 1)");
  ICH_CHECK(bn_momentum >= 0.0f && bn_momentum <= 1.0f,
            "unet: bn_momentum " << bn_momentum << " must be in [0, 1]");
}

std::vector<int> UnetConfig::level_channels() const {
  std::vector<int> channels;
  for (int i = 0; i < depth; ++i) channels.push_back(width << i);
  return channels;
}

std::map<std::string, std::string> UnetConfig::to_metadata() const {
  std::ostringstream drop, momentum;
  drop << drop_rate;
  momentum << bn_momentum;
  return {{"model", "unet"},
          {"unet.in_channels", std::to_string(in_channels)},
          {"unet.width", std::to_string(width)},
          {"unet.depth", std::to_string(depth)},
          {"unet.drop_rate", drop.str()},
          {"unet.bn_momentum", momentum.str()}};
}

bool UnetConfig::in_metadata(const std::map<std::string, std::string>& metadata) {
  return metadata.count("model") != 0;
}

UnetConfig UnetConfig::from_metadata(const std::map<std::string, std::string>& metadata) {
  const auto get = [&](const std::string& key) -> const std::string& {
    const auto it = metadata.find(key);
    ICH_CHECK(it != metadata.end(), "checkpoint metadata has no '" << key << "'");
    return it->second;
  };
  ICH_CHECK(get("model") == "unet",
            "checkpoint holds a '" << get("model") << "' model, not a unet");
  const auto to_int = [&](const std::string& key) {
    const std::string& text = get(key);
    char* end = nullptr;
    const long v = std::strtol(text.c_str(), &end, 10);
    ICH_CHECK(!text.empty() && *end == '\0',
              "checkpoint metadata '" << key << "' = '" << text << "' is not an integer");
    return static_cast<int>(v);
  };
  const auto to_float = [&](const std::string& key) {
    const std::string& text = get(key);
    char* end = nullptr;
    const float v = std::strtof(text.c_str(), &end);
    ICH_CHECK(!text.empty() && *end == '\0',
              "checkpoint metadata '" << key << "' = '" << text << "' is not a number");
    return v;
  };
  UnetConfig c;
  c.in_channels = to_int("unet.in_channels");
  c.width = to_int("unet.width");
  c.depth = to_int("unet.depth");
  c.drop_rate = to_float("unet.drop_rate");
  c.bn_momentum = to_float("unet.bn_momentum");
  c.validate();
  return c;
}

std::string UnetConfig::architecture_differences(const UnetConfig& other) const {
  std::ostringstream os;
  const auto compare = [&](const char* name, int a, int b) {
    if (a == b) return;
    if (os.tellp() > 0) os << "; ";
    os << name << " " << a << " vs " << b;
  };
  compare("in_channels", in_channels, other.in_channels);
  compare("width", width, other.width);
  compare("depth", depth, other.depth);
  return os.str();
}

std::string UnetConfig::str() const {
  std::ostringstream os;
  os << "unet width " << width << " depth " << depth << " in " << in_channels << " drop "
     << drop_rate << " bn_momentum " << bn_momentum;
  return os.str();
}

// ---- blocks

DownConv::DownConv(int in_channels, int out_channels, float drop_rate, float bn_momentum,
                   Generator& init, const std::shared_ptr<Generator>& dropout) {
  conv1 = register_module("conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, 1, init));
  conv1_bn = register_module("conv1_bn", std::make_shared<BatchNorm2d>(out_channels, bn_momentum));
  conv1_drop = register_module("conv1_drop", std::make_shared<Dropout2d>(drop_rate, dropout));
  conv2 =
      register_module("conv2", std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, init));
  conv2_bn = register_module("conv2_bn", std::make_shared<BatchNorm2d>(out_channels, bn_momentum));
  conv2_drop = register_module("conv2_drop", std::make_shared<Dropout2d>(drop_rate, dropout));
}

Tensor DownConv::forward(const Tensor& x) {
  Tensor h = conv1_drop->forward(conv1_bn->forward(relu(conv1->forward(x))));
  return conv2_drop->forward(conv2_bn->forward(relu(conv2->forward(h))));
}

UpConv::UpConv(int in_channels, int out_channels, float drop_rate, float bn_momentum,
               Generator& init, const std::shared_ptr<Generator>& dropout) {
  up1 = register_module("up1", std::make_shared<Upsample>(2, /*align_corners=*/true));
  downconv = register_module(
      "downconv",
      std::make_shared<DownConv>(in_channels, out_channels, drop_rate, bn_momentum, init, dropout));
}

Tensor UpConv::forward(const Tensor& x, const Tensor& skip) {
  const Tensor up =
      up1->forward_to(x, static_cast<int>(skip.dim(2)), static_cast<int>(skip.dim(3)));
  return downconv->forward(concat_channels(up, skip));
}

// ---- Unet

Unet::Unet(const UnetConfig& config, uint64_t seed) : config_(config) {
  config_.validate();
  Generator init(seed);
  dropout_gen_ = std::make_shared<Generator>(seed + 0x9E3779B97F4A7C15ULL);
  const std::vector<int> ch = config_.level_channels();
  const int d = config_.depth;
  const float p = config_.drop_rate, m = config_.bn_momentum;

  int in = config_.in_channels;
  for (int i = 0; i < d; ++i) {
    encoder_.push_back(
        register_module("conv" + std::to_string(i + 1),
                        std::make_shared<DownConv>(in, ch[i], p, m, init, dropout_gen_)));
    pools_.push_back(register_module("mp" + std::to_string(i + 1), std::make_shared<MaxPool2d>(2)));
    in = ch[i];
  }
  bottom_ = register_module("conv" + std::to_string(d + 1),
                            std::make_shared<DownConv>(in, ch[d - 1], p, m, init, dropout_gen_));
  int below = ch[d - 1];
  for (int j = 0; j < d; ++j) {
    const int skip = ch[d - 1 - j];
    decoder_.push_back(
        register_module("up" + std::to_string(j + 1),
                        std::make_shared<UpConv>(below + skip, skip, p, m, init, dropout_gen_)));
    below = skip;
  }
  conv9_ = register_module("conv9", std::make_shared<Conv2d>(ch[0], 1, 3, 1, init));
}

Tensor Unet::forward(const Tensor& x) {
  ICH_CHECK(x.defined() && x.ndim() == 4 && x.dim(1) == config_.in_channels,
            "unet: input must be (N, " << config_.in_channels << ", H, W), got " << x.describe());
  const int64_t min_size = int64_t(1) << config_.depth;
  ICH_CHECK(x.dim(2) >= min_size && x.dim(3) >= min_size,
            "unet: input " << x.shape_str() << " is smaller than " << min_size << "x" << min_size
                           << ", the least a depth-" << config_.depth << " net can pool");
  check_same_device("unet (input, weights)", x, conv9_->weight);
  std::vector<Tensor> skips;
  Tensor h = x;
  for (size_t i = 0; i < encoder_.size(); ++i) {
    h = encoder_[i]->forward(h);
    skips.push_back(h);
    h = pools_[i]->forward(h);
  }
  h = bottom_->forward(h);
  for (size_t j = 0; j < decoder_.size(); ++j)
    h = decoder_[j]->forward(h, skips[skips.size() - 1 - j]);
  return sigmoid(conv9_->forward(h));
}

}  // namespace ich
