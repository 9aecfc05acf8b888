// libFuzzer target: any bytes given to the image reader (PNG, JPEG, BMP through stb_image)
// must end in a grey image of the announced size or an ich::Error.
#include <cstdint>

#include "core/error.h"
#include "data/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ich::data::Image8 image = ich::data::decode_image(data, size, "fuzz input");
    if (image.pixels.size() != size_t(image.w) * image.h) __builtin_trap();
  } catch (const ich::Error&) {
  }
  return 0;
}
