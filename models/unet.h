// The U-Net of medicaltorch (medicaltorch/models.py: DownConv, UpConv, Unet), with its
// state_dict names, and width / depth options. Defaults are the paper's:
//   Unet(drop_rate=0.4, bn_momentum=0.1): 64-128-256 with 3 max pools, 256 at the bottom,
//   bilinear x2 upsampling (align_corners=True) + concat + DownConv, conv9 3x3 -> 1
//   channel, sigmoid.
// width w scales the levels to w, 2w, 4w, ... (the bottom keeps the deepest level's
// width); depth d is the number of pooling levels (1..6). Modules are named as medicaltorch
// names them: conv1..conv{d} (encoder), mp1..mp{d}, conv{d+1} (bottom), up1..up{d}, and the
// output convolution keeps the name conv9 at every depth.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"

namespace ich {

struct UnetConfig {
  int in_channels = 1;
  int width = 64;
  int depth = 3;
  float drop_rate = 0.4f;
  float bn_momentum = 0.1f;

  void validate() const;  // throws ich::Error for sizes out of range
  // Channels of each encoder level: width * 2^i for i = 0 .. depth-1.
  std::vector<int> level_channels() const;

  // Checkpoint metadata: "model" = "unet", "unet.in_channels", "unet.width", "unet.depth",
  // "unet.drop_rate", "unet.bn_momentum".
  std::map<std::string, std::string> to_metadata() const;
  // Throws ich::Error when the metadata holds no U-Net config or a malformed one.
  static UnetConfig from_metadata(const std::map<std::string, std::string>& metadata);
  static bool in_metadata(const std::map<std::string, std::string>& metadata);
  // "" when both configs build the same architecture (same weight shapes); otherwise the
  // differences, e.g. "width 64 vs 16; depth 3 vs 4". drop_rate and bn_momentum are not
  // architecture and are not compared.
  std::string architecture_differences(const UnetConfig& other) const;
  std::string str() const;  // "unet width 64 depth 3 in 1 drop 0.4 bn_momentum 0.1"
};

// [conv3x3 -> relu -> batchnorm -> dropout2d] x 2
class DownConv : public Module {
 public:
  DownConv(int in_channels, int out_channels, float drop_rate, float bn_momentum, Generator& init,
           const std::shared_ptr<Generator>& dropout);
  Tensor forward(const Tensor& x);

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> conv1_bn;
  std::shared_ptr<Dropout2d> conv1_drop;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> conv2_bn;
  std::shared_ptr<Dropout2d> conv2_drop;
};

// upsample x to the skip's size (x2 for even sizes, as medicaltorch), concat [up(x), skip]
// on channels, DownConv.
class UpConv : public Module {
 public:
  UpConv(int in_channels, int out_channels, float drop_rate, float bn_momentum, Generator& init,
         const std::shared_ptr<Generator>& dropout);
  Tensor forward(const Tensor& x, const Tensor& skip);

  std::shared_ptr<Upsample> up1;
  std::shared_ptr<DownConv> downconv;
};

class Unet : public Module {
 public:
  // Weights are drawn from Generator(seed); dropout draws from its own generator, seeded
  // with seed + 0x9E3779B97F4A7C15 so its numbers never repeat the initialisation's.
  explicit Unet(const UnetConfig& config = {}, uint64_t seed = 0);

  // x (N, in_channels, H, W) with H, W >= 2^depth -> probabilities (N, 1, H, W).
  Tensor forward(const Tensor& x);

  const UnetConfig& config() const { return config_; }
  // The dropout generator's (seed, offset): saved in checkpoints so training resumes with
  // the same masks.
  Generator& dropout_generator() { return *dropout_gen_; }

 private:
  UnetConfig config_;
  std::shared_ptr<Generator> dropout_gen_;
  std::vector<std::shared_ptr<DownConv>> encoder_;
  std::vector<std::shared_ptr<MaxPool2d>> pools_;
  std::shared_ptr<DownConv> bottom_;
  std::vector<std::shared_ptr<UpConv>> decoder_;
  std::shared_ptr<Conv2d> conv9_;
};

}  // namespace ich
