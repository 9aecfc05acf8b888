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

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// stb_image trusts a PNG chunk's length field and grows its buffer to it before reading, so
// a 300-byte file could make it allocate gigabytes. Every chunk is checked to lie inside the
// file first; returns the IDAT bytes, which bound what the pixels can decompress to.
int64_t check_png_chunks(const uint8_t* bytes, size_t size, const std::string& what) {
  size_t pos = 8;  // after the signature
  int64_t idat_bytes = 0;
  while (true) {
    ICH_CHECK(pos + 12 <= size, what << " is truncated: the PNG ends without its IEND chunk");
    const uint32_t length = big_endian_u32(bytes + pos);
    ICH_CHECK(length <= size - pos - 12, what << " is damaged or truncated: a PNG chunk of "
                                              << length << " bytes runs past the end of the file ("
                                              << size << " bytes)");
    if (std::memcmp(bytes + pos + 4, "IDAT", 4) == 0) idat_bytes += length;
    if (std::memcmp(bytes + pos + 4, "IEND", 4) == 0) return idat_bytes;
    pos += 12 + size_t(length);
  }
}

// stb_image (Debian's 2022 version) writes past its Huffman size table when a JPEG's DHT
// segment declares more than 256 codes (found by fuzz_image; undefined behaviour inside the
// library). The marker segments are walked here first and such tables refused.
void check_jpeg_segments(const uint8_t* bytes, size_t size, const std::string& what) {
  size_t pos = 2;  // after SOI
  while (pos < size) {
    if (bytes[pos] != 0xff) {
      ++pos;  // entropy-coded data of a scan
      continue;
    }
    while (pos < size && bytes[pos] == 0xff) ++pos;  // fill bytes
    if (pos >= size) break;
    const uint8_t marker = bytes[pos++];
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    if (marker == 0xd9) break;  // EOI
    ICH_CHECK(pos + 2 <= size, what << " is truncated inside a JPEG marker");
    const size_t length = (size_t(bytes[pos]) << 8) | bytes[pos + 1];
    ICH_CHECK(length >= 2 && pos + length <= size,
              what << " is damaged or truncated: a JPEG segment of " << length
                   << " bytes runs past the end of the file");
    if (marker == 0xc4) {
      size_t p = pos + 2;
      const size_t end = pos + length;
      while (p < end) {
        ICH_CHECK(p + 17 <= end, what << " has a damaged JPEG Huffman table");
        size_t codes = 0;
        for (int i = 1; i <= 16; ++i) codes += bytes[p + i];
        ICH_CHECK(codes <= 256,
                  what << " has a damaged JPEG Huffman table (" << codes << " codes, at most 256)");
        p += 17 + codes;
      }
      ICH_CHECK(p == end, what << " has a damaged JPEG Huffman table (wrong segment length)");
    }
    pos += length;
  }
}

}  // namespace

Image8 decode_image(const uint8_t* bytes, size_t size, const std::string& what) {
  ICH_CHECK(size > 0, what << " is empty");
  ICH_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()),
            what << " is larger than 2 GiB; not an image this reader handles");
  // stb_image also decodes TGA, PSD, GIF, HDR, PIC and PNM; TGA has no magic at all, so
  // almost any bytes pass for one (the fuzzer made an 82-byte "TGA" take 20 s). Only the
  // three formats promised are handed to it.
  static const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const bool png = size >= 8 && std::memcmp(bytes, kPngSignature, 8) == 0;
  const bool jpeg = size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff;
  const bool bmp = size >= 2 && bytes[0] == 'B' && bytes[1] == 'M';
  ICH_CHECK(png || jpeg || bmp, what << " is not a PNG, JPEG or BMP image (unknown signature)");
  // The structure is checked before stb_image parses anything, stbi_info included.
  const int64_t idat = png ? check_png_chunks(bytes, size, what) : 0;
  if (jpeg) check_jpeg_segments(bytes, size, what);
  int w = 0, h = 0, channels = 0;
  const int len = static_cast<int>(size);
  ICH_CHECK(stbi_info_from_memory(bytes, len, &w, &h, &channels),
            what << " is not a readable PNG, JPEG or BMP image (" << stbi_failure_reason() << ")");
  ICH_CHECK(w >= 1 && h >= 1 && int64_t(w) * h <= kMaxImagePixels,
            what << " announces an absurd size " << w << "x" << h);
  if (png) {
    // deflate expands at most ~1032:1, and a 1-bit image packs 8 pixels per byte.
    ICH_CHECK(int64_t(w) * h <= idat * 1032 * 8 + 65536, what << " announces " << w << "x" << h
                                                              << " pixels but holds only " << idat
                                                              << " bytes of image data");
  } else if (bmp) {
    // stb_image reads uncompressed BMPs only: at least one bit per pixel must be in the file.
    ICH_CHECK(int64_t(w) * h <= int64_t(size) * 8,
              what << " announces " << w << "x" << h << " pixels in a " << size << "-byte BMP");
  } else {
    // A JPEG spends at least a few bits on every 8x8 block (fewer with progressive end-of-band
    // runs); 1024 pixels per byte is far beyond any real image and stops a tiny file from
    // announcing a huge one.
    ICH_CHECK(int64_t(w) * h <= int64_t(size) * 1024 + 65536,
              what << " announces " << w << "x" << h << " pixels in a " << size << "-byte JPEG");
  }
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
