// Inference with a trained U-Net: loading a checkpoint for eval/predict, and turning images
// into probability maps, whole or by sliding window.
//
// Sliding window: an image larger than the tile is covered by tiles of the tile's side, at
// a step of tile * (1 - overlap), the last row and column shifted to end at the border. The
// probabilities of overlapping tiles are blended with a Gaussian weight centred on each tile
// (sigma = tile / 8, as nnU-Net), so a pixel is decided mostly by the tile that sees it with
// the most context.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/unet.h"

namespace ich::app {

struct InferenceOptions {
  int tile = 0;          // 0: whole images; otherwise the side of the sliding window
  double overlap = 0.5;  // fraction of a tile shared with its neighbour, in [0, 1)
  int batch = 4;         // images (or tiles) per forward pass
};

// probabilities (n, h, w) of images (n, h, w) in [0, 1]. The net must be in eval mode.
std::vector<float> predict_images(Unet& net, const Device& device, const float* images, int n,
                                  int h, int w, const InferenceOptions& options);

// Tile origins along one side of `length` pixels (exposed for tests).
std::vector<int> tile_origins(int length, int tile, double overlap);
// The (tile_h, tile_w) blending weights: a Gaussian centred on the tile, sigma = side / 8.
std::vector<float> gaussian_tile_weights(int tile_h, int tile_w);

struct LoadedModel {
  std::unique_ptr<Unet> net;                    // in eval mode, on the device
  std::map<std::string, std::string> metadata;  // of the checkpoint
  float wl = 40.0f, ww = 120.0f;                // the window the model was trained with
  int patch = 0;                                // the training patch (0: whole slices)
};

// Builds the U-Net the checkpoint describes (or `architecture` when non-null: then a file of
// another architecture is refused with a message naming the difference) and loads it.
LoadedModel load_model(const std::string& checkpoint, const Device& device,
                       const UnetConfig* architecture = nullptr);

// --width and --depth of eval and predict: the U-Net of a checkpoint that does not say which
// it holds (no ichseg metadata, e.g. saved by PyTorch).
struct ArchitectureFlags {
  int width = 0, depth = 0;  // 0: not given

  void add_to(CLI::App& app);
  // load_model with `base` changed by the flags given; without flags, the checkpoint's own.
  LoadedModel load(const std::string& checkpoint, const Device& device,
                   const UnetConfig& base = {}) const;
};

}  // namespace ich::app
