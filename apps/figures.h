// The pictures a run leaves for people to look at: validation panels (image | truth |
// prediction, grey) and overlays (the CT slice in grey, the predicted hemorrhage filled in
// red, the true outline in green), written as PNG through a temporary name and a rename.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image_io.h"

namespace ich::app {

// image, truth, probability: (h, w) each, in [0, 1]. Three panels side by side, 4 px apart;
// the prediction panel shows the probability (0 black, 1 white).
data::Image8 sample_panel(const float* image, const float* truth, const float* probability, int h,
                          int w);

// image (h, w) in [0, 1]; predicted (h, w) 0/1; truth (h, w) 0/1 or null (no outline).
// Returns RGB pixels (h, w, 3).
std::vector<uint8_t> overlay_rgb(const float* image, const uint8_t* predicted, const uint8_t* truth,
                                 int h, int w);
void write_rgb_png(const std::string& path, const std::vector<uint8_t>& rgb, int h, int w);

}  // namespace ich::app
