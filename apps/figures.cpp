#include "apps/figures.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/fileutil.h"

namespace ich::app {

namespace {

uint8_t to_byte(float v) {
  return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

}  // namespace

data::Image8 sample_panel(const float* image, const float* truth, const float* probability, int h,
                          int w) {
  constexpr int kGap = 4;
  data::Image8 panel;
  panel.w = 3 * w + 2 * kGap;
  panel.h = h;
  panel.pixels.assign(size_t(panel.w) * h, 128);  // mid grey between the panels
  const float* sources[3] = {image, truth, probability};
  for (int p = 0; p < 3; ++p) {
    const int x0 = p * (w + kGap);
    for (int r = 0; r < h; ++r)
      for (int c = 0; c < w; ++c)
        panel.pixels[size_t(r) * panel.w + x0 + c] = to_byte(sources[p][size_t(r) * w + c]);
  }
  return panel;
}

std::vector<uint8_t> overlay_rgb(const float* image, const uint8_t* predicted, const uint8_t* truth,
                                 int h, int w) {
  std::vector<uint8_t> rgb(size_t(h) * w * 3);  // (h, w, 3)
  for (int r = 0; r < h; ++r) {
    for (int c = 0; c < w; ++c) {
      const size_t i = size_t(r) * w + c;
      float red = image[i], green = image[i], blue = image[i];
      if (predicted[i]) {
        // 50 % red over the grey, so the anatomy under the prediction stays visible.
        red = 0.5f * red + 0.5f;
        green *= 0.5f;
        blue *= 0.5f;
      }
      if (truth && truth[i]) {
        // Outline: a truth pixel with a 4-neighbour outside the truth (or the image).
        const bool edge = r == 0 || c == 0 || r == h - 1 || c == w - 1 || !truth[i - 1] ||
                          !truth[i + 1] || !truth[i - w] || !truth[i + w];
        if (edge) red = 0.0f, green = 1.0f, blue = 0.0f;
      }
      rgb[3 * i] = to_byte(red);
      rgb[3 * i + 1] = to_byte(green);
      rgb[3 * i + 2] = to_byte(blue);
    }
  }
  return rgb;
}

void write_rgb_png(const std::string& path, const std::vector<uint8_t>& rgb, int h, int w) {
  ICH_CHECK(rgb.size() == size_t(h) * w * 3,
            "write_rgb_png: " << rgb.size() << " bytes for a " << w << "x" << h << " RGB image");
  std::vector<uint8_t> png;
  ICH_CHECK(stbi_write_png_to_func(append_bytes, &png, w, h, 3, rgb.data(), w * 3) != 0,
            "cannot encode " << path << " as PNG");
  data::write_file_atomic(path, png.data(), png.size());
}

}  // namespace ich::app
