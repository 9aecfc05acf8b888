// HU windowing for 8-bit slices. The window itself, clamp((HU - (WL - WW/2)) / WW, 0, 1), has
// one implementation per backend (Backend::ct_window); this only quantises its result.
#pragma once

#include <cstdint>

namespace ich::data {

// out[i] = round(255 * window(hu[i])), computed on the cpu backend. ww must be > 0.
void window_to_u8(const float* hu, int64_t n, float wl, float ww, uint8_t* out);

// Checks a window given by a user: ww > 0 and both finite.
void check_window(float wl, float ww);

}  // namespace ich::data
