#include "apps/predictor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"

namespace ich::app {

namespace {

// Forward of n same-sized images (n, h, w) -> probabilities (n, h, w), `batch` at a time.
void forward_whole(Unet& net, const Device& device, const float* images, int n, int h, int w,
                   int batch, float* out) {
  const size_t plane = size_t(h) * w;
  for (int first = 0; first < n; first += batch) {
    const int count = std::min(batch, n - first);
    std::vector<float> chunk(images + first * plane, images + (first + count) * plane);
    const Tensor x = Tensor::from_host(chunk, {count, 1, h, w}, device);
    const std::vector<float> p = net.forward(x).to_host();
    std::copy(p.begin(), p.end(), out + first * plane);
  }
}

double metadata_number(const std::map<std::string, std::string>& metadata, const std::string& key,
                       double fallback) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  return (!it->second.empty() && *end == '\0') ? v : fallback;
}

}  // namespace

std::vector<int> tile_origins(int length, int tile, double overlap) {
  if (length <= tile) return {0};
  const int step = std::max(1, static_cast<int>(std::lround(tile * (1.0 - overlap))));
  std::vector<int> origins;
  for (int o = 0; o + tile <= length; o += step) origins.push_back(o);
  if (origins.back() + tile < length) origins.push_back(length - tile);
  return origins;
}

std::vector<float> gaussian_tile_weights(int tile_h, int tile_w) {
  const double sigma_h = tile_h / 8.0, sigma_w = tile_w / 8.0;
  const double centre_h = (tile_h - 1) / 2.0, centre_w = (tile_w - 1) / 2.0;
  std::vector<float> weights(size_t(tile_h) * tile_w);  // (tile_h, tile_w)
  for (int r = 0; r < tile_h; ++r) {
    for (int c = 0; c < tile_w; ++c) {
      const double dr = (r - centre_h) / sigma_h, dc = (c - centre_w) / sigma_w;
      // Floored at 1e-3 of the peak so that border pixels seen by one tile keep a weight.
      weights[size_t(r) * tile_w + c] =
          static_cast<float>(std::max(std::exp(-(dr * dr + dc * dc) / 2), 1e-3));
    }
  }
  return weights;
}

std::vector<float> predict_images(Unet& net, const Device& device, const float* images, int n,
                                  int h, int w, const InferenceOptions& o) {
  ICH_CHECK(n >= 1 && h >= 1 && w >= 1, "predict: no image to predict");
  ICH_CHECK(o.batch >= 1, "predict: batch " << o.batch << " must be at least 1");
  ICH_CHECK(o.overlap >= 0 && o.overlap < 1, "--overlap " << o.overlap << " must be in [0, 1)");
  NoGradGuard no_grad;
  const size_t plane = size_t(h) * w;
  std::vector<float> out(size_t(n) * plane);
  const int tile = o.tile;
  if (tile <= 0 || (h <= tile && w <= tile)) {
    forward_whole(net, device, images, n, h, w, o.batch, out.data());
    return out;
  }
  // A tile never exceeds the image: an image narrower than the tile on one side uses the
  // image's side there.
  const int th = std::min(tile, h), tw = std::min(tile, w);
  const std::vector<int> rows = tile_origins(h, th, o.overlap);
  const std::vector<int> cols = tile_origins(w, tw, o.overlap);
  const std::vector<float> weights = gaussian_tile_weights(th, tw);
  struct TileAt {
    int image, y, x;
  };
  std::vector<TileAt> tiles;
  for (int i = 0; i < n; ++i)
    for (int y : rows)
      for (int x : cols) tiles.push_back({i, y, x});
  std::vector<double> sum(out.size(), 0.0), weight_sum(out.size(), 0.0);
  const size_t tile_plane = size_t(th) * tw;
  for (size_t first = 0; first < tiles.size(); first += size_t(o.batch)) {
    const size_t count = std::min(size_t(o.batch), tiles.size() - first);
    std::vector<float> chunk(count * tile_plane);  // (count, th, tw)
    for (size_t t = 0; t < count; ++t) {
      const TileAt& at = tiles[first + t];
      for (int r = 0; r < th; ++r) {
        const float* src = images + at.image * plane + size_t(at.y + r) * w + at.x;
        std::copy(src, src + tw, chunk.data() + t * tile_plane + size_t(r) * tw);
      }
    }
    const std::vector<float> p =
        net.forward(Tensor::from_host(chunk, {int64_t(count), 1, th, tw}, device)).to_host();
    for (size_t t = 0; t < count; ++t) {
      const TileAt& at = tiles[first + t];
      for (int r = 0; r < th; ++r) {
        for (int c = 0; c < tw; ++c) {
          const size_t dst = at.image * plane + size_t(at.y + r) * w + at.x + c;
          const float wgt = weights[size_t(r) * tw + c];
          sum[dst] += double(wgt) * p[t * tile_plane + size_t(r) * tw + c];
          weight_sum[dst] += wgt;
        }
      }
    }
  }
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(sum[i] / weight_sum[i]);
  return out;
}

LoadedModel load_model(const std::string& checkpoint, const Device& device,
                       const UnetConfig* architecture) {
  ICH_CHECK(std::filesystem::is_regular_file(checkpoint),
            "checkpoint " << checkpoint << " does not exist");
  const SafetensorsFile file = load_safetensors(checkpoint);
  UnetConfig config;
  if (architecture) {
    config = *architecture;
  } else {
    ICH_CHECK(UnetConfig::in_metadata(file.metadata),
              checkpoint << " does not say which U-Net it holds (no ichseg metadata, e.g. saved "
                            "by PyTorch): pass --width and --depth");
    config = UnetConfig::from_metadata(file.metadata);
  }
  LoadedModel m;
  m.net = std::make_unique<Unet>(config, 0);
  m.net->to(device);
  m.metadata = load_checkpoint(checkpoint, *m.net, nullptr);
  m.net->eval();
  m.wl = static_cast<float>(metadata_number(m.metadata, "data.wl", 40.0));
  m.ww = static_cast<float>(metadata_number(m.metadata, "data.ww", 120.0));
  m.patch = static_cast<int>(metadata_number(m.metadata, "train.patch", 0.0));
  return m;
}

void ArchitectureFlags::add_to(CLI::App& app) {
  app.add_option("--width", width, "U-Net width, for checkpoints without ichseg metadata");
  app.add_option("--depth", depth, "U-Net depth, for checkpoints without ichseg metadata");
}

LoadedModel ArchitectureFlags::load(const std::string& checkpoint, const Device& device,
                                    const UnetConfig& base) const {
  if (width <= 0 && depth <= 0) return load_model(checkpoint, device);
  UnetConfig architecture = base;
  if (width > 0) architecture.width = width;
  if (depth > 0) architecture.depth = depth;
  return load_model(checkpoint, device, &architecture);
}

}  // namespace ich::app
