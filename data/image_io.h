// 8-bit grey images: PNG, JPEG or BMP in (stb_image), PNG out (stb_image_write).
// Pixels are row-major, (h, w), one byte each; colour files are converted to grey.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ich::data {

struct Image8 {
  int w = 0, h = 0;
  std::vector<uint8_t> pixels;  // (h, w)

  uint8_t at(int row, int col) const { return pixels[size_t(row) * w + col]; }
};

// The largest image accepted, in pixels (about 5800 x 5800): refuses a header that
// announces absurd sizes before anything is decoded. PNG chunk lengths and BMP sizes are
// also checked against the file's size, so a small file never makes the decoder allocate
// much more than it could hold.
constexpr int64_t kMaxImagePixels = int64_t(1) << 25;

// Decodes an image held in memory; what names it in error messages.
Image8 decode_image(const uint8_t* bytes, size_t size, const std::string& what);
// Reads and decodes a file; throws ich::Error naming it when it is missing, truncated or not
// an image.
Image8 read_image(const std::string& path);
// Writes a grey PNG atomically (temporary file + rename).
void write_png(const std::string& path, const Image8& image);
// PNG bytes in memory (compression level as stb's default).
std::vector<uint8_t> encode_png(const Image8& image);

}  // namespace ich::data
