#include "data/dicom_rle.h"

#include "core/error.h"

namespace ich::data {

namespace {

uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

std::vector<uint8_t> decode_dicom_rle(const std::string& name, const uint8_t* fragment,
                                      int64_t length, int rows, int columns, int bytes_per_pixel) {
  ICH_CHECK(length >= 64, name << ": its RLE fragment has " << length
                               << " bytes, fewer than the 64 of an RLE header");
  const int64_t pixels = int64_t(rows) * columns;
  const uint32_t segments = le32(fragment);
  ICH_CHECK(segments == uint32_t(bytes_per_pixel),
            name << ": its RLE header announces " << segments << " segments; a greyscale image of "
                 << 8 * bytes_per_pixel << "-bit pixels has " << bytes_per_pixel);
  std::vector<uint8_t> out(size_t(pixels * bytes_per_pixel));
  for (uint32_t s = 0; s < segments; ++s) {
    const int64_t begin = le32(fragment + 4 + 4 * s);
    const int64_t end = s + 1 < segments ? int64_t(le32(fragment + 8 + 4 * s)) : length;
    ICH_CHECK(begin >= 64 && begin <= end && end <= length,
              name << ": RLE segment " << s << " runs from byte " << begin << " to " << end
                   << " of a fragment of " << length << " bytes");
    // Segment s holds byte (bytes_per_pixel - 1 - s) of each little-endian container.
    uint8_t* dst = out.data() + (bytes_per_pixel - 1 - int(s));
    int64_t in = begin, done = 0;
    while (done < pixels) {
      ICH_CHECK(in < end, name << ": RLE segment " << s << " ends after " << done << " of "
                               << pixels << " pixels");
      const int n = static_cast<int8_t>(fragment[in++]);
      if (n >= 0) {  // n + 1 literal bytes
        ICH_CHECK(end - in >= n + 1 && pixels - done >= n + 1,
                  name << ": a literal run of RLE segment " << s << " overruns "
                       << (end - in < n + 1 ? "the segment" : "the image"));
        for (int i = 0; i <= n; ++i) dst[(done++) * bytes_per_pixel] = fragment[in++];
      } else if (n != -128) {  // the next byte 1 - n times
        ICH_CHECK(in < end && pixels - done >= 1 - n,
                  name << ": a repeat run of RLE segment " << s << " overruns "
                       << (in >= end ? "the segment" : "the image"));
        const uint8_t b = fragment[in++];
        for (int i = 0; i < 1 - n; ++i) dst[(done++) * bytes_per_pixel] = b;
      }
    }
  }
  return out;
}

}  // namespace ich::data
