#include "data/dicom_codestream.h"

#include <cstring>

#include "core/error.h"

namespace ich::data {

namespace {

uint32_t be16(const uint8_t* p) {
  return uint32_t(p[0]) << 8 | p[1];
}
uint32_t be32(const uint8_t* p) {
  return be16(p) << 16 | be16(p + 2);
}

// A frame header marker: SOF0-3, 5-7, 9-11, 13-15 (not DHT C4, JPG C8, DAC CC), JPEG-LS SOF55.
bool is_frame_marker(uint8_t m) {
  return (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7;
}

CodestreamHeader jpeg_header(const std::string& name, const uint8_t* b, int64_t n,
                             const char* what) {
  ICH_CHECK(n >= 2 && b[0] == 0xFF && b[1] == 0xD8,
            name << ": its pixel data do not start with a " << what << " stream (no SOI marker)");
  // Marker segments up to the start of the scan (SOS), which must follow the frame header:
  // IJG asked to decode a stream without a scan returns a state GDCM asserts on.
  int64_t pos = 2;
  CodestreamHeader h;
  bool found = false;
  for (;;) {
    ICH_CHECK(pos + 2 <= n, name << ": its " << what << " stream ends before its scan");
    ICH_CHECK(b[pos] == 0xFF, name << ": its " << what << " stream has no marker at byte " << pos);
    while (pos + 1 < n && b[pos + 1] == 0xFF) ++pos;  // fill bytes
    ICH_CHECK(pos + 2 <= n, name << ": its " << what << " stream ends before its scan");
    const uint8_t m = b[pos + 1];
    pos += 2;
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
    ICH_CHECK(m != 0xD9, name << ": its " << what << " stream ends before its scan");
    ICH_CHECK(pos + 2 <= n, name << ": its " << what << " stream ends in a marker segment");
    const int64_t length = be16(b + pos);
    ICH_CHECK(length >= 2 && pos + length <= n,
              name << ": a marker segment of its " << what << " stream is cut off");
    if (m == 0xDA) {
      ICH_CHECK(found, name << ": its " << what << " stream has no frame header before its scan");
      return h;
    }
    if (is_frame_marker(m)) {
      ICH_CHECK(!found, name << ": its " << what << " stream has two frame headers");
      ICH_CHECK(length >= 8, name << ": the frame header of its " << what << " stream is cut off");
      found = true;
      h.precision = b[pos + 2];
      h.height = int(be16(b + pos + 3));
      h.width = int(be16(b + pos + 5));
      h.components = b[pos + 7];
    }
    pos += length;
  }
}

// The marker segments of a JPEG 2000 codestream after SIZ (at `pos`): the main header up to
// the first tile-part, then each tile-part (SOT with its length Psot, its header up to SOD),
// up to EOC or the end. GDCM walks these itself to learn whether the stream is reversible,
// trusting every length: a length past the end crashed it (found by fuzz_dicom).
void check_j2k_segments(const std::string& name, const uint8_t* b, int64_t n, int64_t pos) {
  auto fail = [&](const char* what, int64_t at) {
    ICH_FAIL(name << ": its JPEG 2000 codestream " << what << " (byte " << at << ")");
  };
  bool in_tile_header = false;
  int64_t tile_end = 0;
  for (;;) {
    if (pos == n) return;  // a codestream without EOC: the decoder says what it thinks of it
    if (n - pos < 2) fail("ends inside a marker", pos);
    const uint32_t m = be16(b + pos);
    if (m == 0xFFD9) return;  // EOC
    if ((m >> 8) != 0xFF) fail("has no marker where one must be", pos);
    if (m == 0xFF93) {  // SOD: the tile-part's data run to its end
      if (!in_tile_header) fail("has a start of data outside a tile-part", pos);
      in_tile_header = false;
      pos = tile_end;
      continue;
    }
    if (m == 0xFF4F || (m >= 0xFF30 && m <= 0xFF3F)) fail("has a marker out of place", pos);
    if (n - pos < 4) fail("ends inside a marker segment", pos);
    const int64_t length = be16(b + pos + 2);
    if (length < 2 || length > n - pos - 2) fail("has a marker segment cut off", pos);
    if (m == 0xFF90) {  // SOT: Lsot 10, Isot, Psot (from the SOT marker), TPsot, TNsot
      if (in_tile_header || length != 10) fail("has a damaged tile-part header", pos);
      const int64_t psot = be32(b + pos + 6);
      if (psot != 0 && (psot < 14 || psot > n - pos)) fail("has a tile-part cut off", pos);
      tile_end = psot == 0 ? n : pos + psot;
      in_tile_header = true;
    }
    pos += 2 + length;
    if (in_tile_header && pos > tile_end) fail("has a tile-part header past its tile-part", pos);
  }
}

// A JPEG 2000 codestream (SOC, then SIZ), possibly inside a JP2 file's jp2c box.
CodestreamHeader j2k_header(const std::string& name, const uint8_t* b, int64_t n) {
  int64_t pos = 0;
  static const uint8_t kJp2Signature[12] = {0,   0,   0,    12,   'j',  'P',
                                            ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
  if (n >= 12 && std::memcmp(b, kJp2Signature, 12) == 0) {
    // JP2 boxes: length (4), type (4); find the contiguous codestream box.
    for (;;) {
      ICH_CHECK(pos + 8 <= n, name << ": its JP2 pixel data hold no codestream box");
      int64_t length = be32(b + pos);
      int64_t header = 8;
      if (length == 1) {
        ICH_CHECK(pos + 16 <= n, name << ": a JP2 box of its pixel data is cut off");
        length = int64_t(be32(b + pos + 8)) << 32 | be32(b + pos + 12);
        header = 16;
      }
      if (std::memcmp(b + pos + 4, "jp2c", 4) == 0) {
        pos += header;
        break;
      }
      ICH_CHECK(length >= header && length <= n - pos,
                name << ": a JP2 box of its pixel data is cut off");
      pos += length;
    }
  }
  ICH_CHECK(n - pos >= 4 && be16(b + pos) == 0xFF4F && be16(b + pos + 2) == 0xFF51,
            name << ": its pixel data do not start with a JPEG 2000 codestream (SOC, SIZ)");
  const uint8_t* s = b + pos + 4;  // the SIZ segment, after its marker
  const int64_t left = n - pos - 4;
  ICH_CHECK(left >= 38, name << ": the SIZ header of its JPEG 2000 codestream is cut off");
  const int64_t length = be16(s);
  CodestreamHeader h;
  const uint32_t xsiz = be32(s + 4), ysiz = be32(s + 8), xo = be32(s + 12), yo = be32(s + 16);
  ICH_CHECK(xsiz > xo && ysiz > yo && xsiz - xo <= 65535 && ysiz - yo <= 65535,
            name << ": its JPEG 2000 codestream has an image area of " << xo << ".." << xsiz
                 << " x " << yo << ".." << ysiz);
  h.width = int(xsiz - xo);
  h.height = int(ysiz - yo);
  h.components = int(be16(s + 36));
  ICH_CHECK(h.components >= 1 && length >= 38 + 3 * h.components && left >= 38 + 3,
            name << ": the SIZ header of its JPEG 2000 codestream is cut off");
  h.precision = (s[38] & 0x7F) + 1;
  ICH_CHECK(s[39] == 1 && s[40] == 1, name
                                          << ": its JPEG 2000 codestream subsamples its component ("
                                          << int(s[39]) << "x" << int(s[40]) << ")");
  ICH_CHECK(be32(s + 20) > 0 && be32(s + 24) > 0,
            name << ": its JPEG 2000 codestream has tiles of no size");
  for (int c = 1; c < h.components && 38 + 3 * c < left; ++c)
    ICH_CHECK((s[38 + 3 * c] & 0x7F) + 1 == h.precision,
              name << ": the components of its JPEG 2000 codestream differ in precision");
  check_j2k_segments(name, b + pos, n - pos, 4 + length);
  return h;
}

}  // namespace

std::vector<uint8_t> jpeg_without_application_segments(const uint8_t* b, int64_t n) {
  std::vector<uint8_t> out(b, b + 2);  // SOI
  int64_t pos = 2;
  while (pos + 4 <= n) {
    while (pos + 1 < n && b[pos + 1] == 0xFF) ++pos;  // fill bytes
    const uint8_t m = b[pos + 1];
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
      pos += 2;
      continue;
    }
    const int64_t length = be16(b + pos + 2);
    if (m == 0xDA) break;  // the scan and everything after it, as they are
    if (!((m >= 0xE0 && m <= 0xEF) || m == 0xFE))
      out.insert(out.end(), b + pos, b + pos + 2 + length);
    pos += 2 + length;
  }
  out.insert(out.end(), b + pos, b + n);
  if (out.size() % 2) out.push_back(0);  // fragments have even lengths; after EOI it is unread
  return out;
}

CodestreamHeader read_codestream_header(const std::string& name, const uint8_t* bytes,
                                        int64_t length, CodestreamKind kind) {
  switch (kind) {
    case CodestreamKind::kJpeg:
      return jpeg_header(name, bytes, length, "JPEG");
    case CodestreamKind::kJpegLs:
      return jpeg_header(name, bytes, length, "JPEG-LS");
    case CodestreamKind::kJpeg2000:
      return j2k_header(name, bytes, length);
  }
  ICH_FAIL(name << ": unknown codestream kind");
}

void check_codestream_matches(const std::string& name, const CodestreamHeader& s, int rows,
                              int columns, int bits_allocated) {
  ICH_CHECK(s.width == columns && s.height == rows,
            name << ": its compressed stream is " << s.width << "x" << s.height
                 << " but the header says " << columns << "x" << rows << " (columns x rows)");
  ICH_CHECK(s.components == 1, name << ": its compressed stream has " << s.components
                                    << " components; a greyscale image has 1");
  ICH_CHECK(s.precision >= 1 && s.precision <= 16 && (s.precision + 7) / 8 == bits_allocated / 8,
            name << ": its compressed stream has " << s.precision
                 << "-bit samples, which do not fill BitsAllocated " << bits_allocated);
}

}  // namespace ich::data
