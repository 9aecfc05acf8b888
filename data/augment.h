// Seeded augmentation of one training sample, applied while it is cut out of its slice.
//
// The output window (x0, y0, w, h) of the slice is mapped, around the window's centre,
// through: flips, a rotation, and an elastic deformation as in the U-Net paper (random
// displacements on a coarse grid of control points, Gaussian with elastic_sigma pixels of
// standard deviation, interpolated bicubically to every pixel). The image is sampled
// bilinearly, the mask by nearest neighbour (so it stays 0/1); outside the slice both
// read 0. Then Gaussian intensity noise is added to the image, which is clamped to [0, 1].
#pragma once

#include "data/image_io.h"
#include "data/rng.h"

namespace ich::data {

struct AugmentOptions {
  double flip_horizontal = 0.0;  // probability of a left-right flip
  double flip_vertical = 0.0;    // probability of an up-down flip
  double rotate_degrees = 0.0;   // angle uniform in [-r, r]
  double elastic_sigma = 0.0;    // px; 0 = none (the U-Net paper used 10 on a 3x3 grid)
  int elastic_grid = 3;          // control points per side (>= 2)
  double noise_std = 0.0;        // of the additive noise on the [0, 1] image

  bool geometric() const {
    return flip_horizontal > 0 || flip_vertical > 0 || rotate_degrees > 0 || elastic_sigma > 0;
  }
};

// Writes image (h, w) in [0, 1] and mask (h, w) in {0, 1}. The random numbers are drawn from
// rng in a fixed order, only for the augmentations that are on.
void augment_crop(const Image8& image, const Image8& mask, int x0, int y0, int w, int h,
                  const AugmentOptions& options, Rng& rng, float* out_image, float* out_mask);

}  // namespace ich::data
