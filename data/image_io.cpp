#include "data/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "data/fileutil.h"

namespace ich::data {

namespace {

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

}  // namespace

Image8 decode_image(const uint8_t* bytes, size_t size, const std::string& what) {
  ICH_CHECK(size > 0, what << " is empty");
  ICH_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()),
            what << " is larger than 2 GiB; not an image this reader handles");
  int w = 0, h = 0, channels = 0;
  const int len = static_cast<int>(size);
  ICH_CHECK(stbi_info_from_memory(bytes, len, &w, &h, &channels),
            what << " is not a readable PNG, JPEG or BMP image (" << stbi_failure_reason() << ")");
  ICH_CHECK(w >= 1 && h >= 1 && int64_t(w) * h <= kMaxImagePixels,
            what << " announces an absurd size " << w << "x" << h);
  int got_w = 0, got_h = 0;
  unsigned char* pixels = stbi_load_from_memory(bytes, len, &got_w, &got_h, &channels, 1);
  ICH_CHECK(pixels != nullptr,
            what << " is damaged or truncated (" << stbi_failure_reason() << ")");
  Image8 image;
  image.w = got_w;
  image.h = got_h;
  image.pixels.assign(pixels, pixels + size_t(got_w) * got_h);
  stbi_image_free(pixels);
  return image;
}

Image8 read_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> encode_png(const Image8& image) {
  ICH_CHECK(image.w >= 1 && image.h >= 1 && image.pixels.size() == size_t(image.w) * image.h,
            "cannot encode a " << image.w << "x" << image.h << " PNG from " << image.pixels.size()
                               << " pixels");
  std::vector<uint8_t> out;
  ICH_CHECK(stbi_write_png_to_func(append_bytes, &out, image.w, image.h, 1, image.pixels.data(),
                                   image.w) != 0,
            "PNG encoding of a " << image.w << "x" << image.h << " image failed");
  return out;
}

void write_png(const std::string& path, const Image8& image) {
  const std::vector<uint8_t> png = encode_png(image);
  write_file_atomic(path, png.data(), png.size());
}

}  // namespace ich::data
