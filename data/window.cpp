#include "data/window.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"

namespace ich::data {

void check_window(float wl, float ww) {
  ICH_CHECK(std::isfinite(wl) && std::isfinite(ww) && ww > 0.0f,
            "invalid window WL " << wl << " WW " << ww << ": the width must be a positive number");
}

void window_to_u8(const float* hu, int64_t n, float wl, float ww, uint8_t* out) {
  check_window(wl, ww);
  thread_local std::vector<float> windowed;
  windowed.resize(static_cast<size_t>(n));
  backend_for(Device::cpu()).ct_window(hu, windowed.data(), n, wl, ww);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint8_t>(std::lround(windowed[i] * 255.0f));
  }
}

}  // namespace ich::data
