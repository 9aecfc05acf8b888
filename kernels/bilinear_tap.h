// The source taps of one output index of bilinear upsampling, as PyTorch's upsample_bilinear2d
// with scale = in/out (area_pixel_compute_scale + area_pixel_compute_source_index +
// guard_index_and_lambda), in float. Shared by kernels/cpu/upsample.cpp and
// kernels/cuda/upsample.cu, so both backends compute the same taps bit for bit:
//   align_corners true:  src = dst * (in - 1) / (out - 1)      (0 when out == 1)
//   align_corners false: src = max((dst + 0.5) * in / out - 0.5, 0)
//   i0 = min(floor(src), in - 1), i1 = i0 + (i0 < in - 1),
//   lambda1 = clamp(src - i0, 0, 1), lambda0 = 1 - lambda1.
#pragma once

#include "core/host_device.h"

namespace ich {

struct LinearTap {
  int i0;
  int i1;
  float lambda0;
  float lambda1;
};

ICH_HD LinearTap linear_tap(int dst, int in_size, int out_size, bool align_corners) {
  float src;
  if (align_corners) {
    const float scale =
        out_size > 1 ? static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1) : 0.0f;
    src = scale * static_cast<float>(dst);
  } else {
    const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
    src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
  }
  // Float rounding of scale * dst must not step past the edge.
  LinearTap tap;
  const int floor_src = static_cast<int>(src);
  tap.i0 = floor_src < in_size - 1 ? floor_src : in_size - 1;
  tap.i1 = tap.i0 + (tap.i0 < in_size - 1 ? 1 : 0);
  const float frac = src - static_cast<float>(tap.i0);
  tap.lambda1 = frac < 0.0f ? 0.0f : (frac > 1.0f ? 1.0f : frac);
  tap.lambda0 = 1.0f - tap.lambda1;
  return tap;
}

}  // namespace ich
