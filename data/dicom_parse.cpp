#include "data/dicom_parse.h"

#include <gdcmUIDs.h>
#include <zlib.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "data/text.h"

namespace ich::data {

namespace {

constexpr int kPreambleBytes = 128;
constexpr int kMaxDepth = 32;  // nested sequences; real files use a handful
constexpr uint32_t kItem = 0xFFFEE000;
constexpr uint32_t kItemEnd = 0xFFFEE00D;
constexpr uint32_t kSequenceEnd = 0xFFFEE0DD;
constexpr uint32_t kPixelData = 0x7FE00010;
constexpr uint32_t kUndefinedLength = 0xFFFFFFFFu;
constexpr uint32_t kTransferSyntaxTag = 0x00020010;
// deflate expands by at most ~1032:1; also an absolute bound on what one file may inflate to.
constexpr int64_t kMaxDeflateRatio = 1032;
constexpr int64_t kMaxInflatedBytes = int64_t(1) << 30;

const char kImplicitLittle[] = "1.2.840.10008.1.2";
const char kExplicitLittle[] = "1.2.840.10008.1.2.1";
const char kExplicitBig[] = "1.2.840.10008.1.2.2";
const char kDeflatedLittle[] = "1.2.840.10008.1.2.1.99";
const char kGePrivateImplicit[] = "1.2.840.113619.5.2";

// Every VR of PS3.5 6.2.
bool is_vr(const char* v) {
  static const char* const kVrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL",
                                     "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
                                     "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC",
                                     "UI", "UL", "UN", "UR", "US", "UT", "UV"};
  for (const char* k : kVrs)
    if (v[0] == k[0] && v[1] == k[1]) return true;
  return false;
}

// VRs whose explicit header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
bool has_long_length(const char* v) {
  static const char* const kLong[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                      "UC", "UN", "UR", "UT", "SV", "UV"};
  for (const char* k : kLong)
    if (v[0] == k[0] && v[1] == k[1]) return true;
  return false;
}

uint16_t read16(const uint8_t* p, bool big) {
  return big ? uint16_t(p[0] << 8 | p[1]) : uint16_t(p[1] << 8 | p[0]);
}
uint32_t read32(const uint8_t* p, bool big) {
  return big ? uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]
             : uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0];
}

std::string printable(const uint8_t* p, size_t n) {
  return printable_bytes(p, n);
}

std::string trim(const char* p, size_t n) {
  size_t b = 0, e = n;
  while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\0')) --e;
  while (b < e && p[b] == ' ') ++b;
  return std::string(p + b, e - b);
}

// Names of the tags whose values the reader checks, for messages.
const char* tag_name(uint32_t tag) {
  switch (tag) {
    case 0x00020010:
      return "TransferSyntaxUID";
    case 0x00080016:
      return "SOPClassUID";
    case 0x00080018:
      return "SOPInstanceUID";
    case 0x00080060:
      return "Modality";
    case 0x00180050:
      return "SliceThickness";
    case 0x00180088:
      return "SpacingBetweenSlices";
    case 0x00181120:
      return "GantryDetectorTilt";
    case 0x00200011:
      return "SeriesNumber";
    case 0x00200013:
      return "InstanceNumber";
    case 0x00200032:
      return "ImagePositionPatient";
    case 0x00200037:
      return "ImageOrientationPatient";
    case 0x00280002:
      return "SamplesPerPixel";
    case 0x00280008:
      return "NumberOfFrames";
    case 0x00280010:
      return "Rows";
    case 0x00280011:
      return "Columns";
    case 0x00280030:
      return "PixelSpacing";
    case 0x00280100:
      return "BitsAllocated";
    case 0x00280101:
      return "BitsStored";
    case 0x00280102:
      return "HighBit";
    case 0x00280103:
      return "PixelRepresentation";
    case 0x00281052:
      return "RescaleIntercept";
    case 0x00281053:
      return "RescaleSlope";
    default:
      return "";
  }
}

std::string tag_label(uint32_t tag) {
  const char* n = tag_name(tag);
  return (*n ? std::string(n) + " " : std::string()) + dicom_tag_text(tag);
}

// Byte order and VR encoding of the data set being walked.
struct Encoding {
  bool big = false;
  bool explicit_vr = true;
};

// Walks a data set, checking that every length lies inside its container. Offsets in
// messages are of the file, or of the inflated data set (`where` says which).
class Walker {
 public:
  Walker(const std::string& name, const uint8_t* data, int64_t size, const char* where)
      : name_(name), data_(data), size_(size), where_(where) {}

  std::vector<DicomElement> elements;
  std::vector<DicomFragment> fragments;
  bool encapsulated = false;

  // The top-level data set from pos to the end of the data.
  void walk_top(int64_t pos, Encoding enc) { walk_dataset(pos, size_, false, enc, 0, true); }

 private:
  struct Header {
    uint32_t tag = 0;
    char vr[3] = {0, 0, 0};
    uint32_t length = 0;
    int64_t value = 0;  // offset of the value
  };

  [[noreturn]] void truncated(const std::string& what) const {
    ICH_FAIL(name_ << " is truncated or damaged: " << what);
  }
  [[noreturn]] void malformed(const std::string& what) const {
    ICH_FAIL(name_ << " is not a well-formed DICOM file: " << what);
  }
  std::string at(int64_t pos) const {
    return "at byte " + std::to_string(pos) + std::string(where_);
  }

  Header header(int64_t pos, int64_t end, Encoding enc) const {
    if (end - pos < 8) truncated("an element header " + at(pos) + " is cut off");
    Header h;
    const uint8_t* p = data_ + pos;
    h.tag = uint32_t(read16(p, enc.big)) << 16 | read16(p + 2, enc.big);
    // Item and delimiter tags have no VR in any encoding (PS3.5 7.5).
    if (!enc.explicit_vr || (h.tag >> 16) == 0xFFFE) {
      h.length = read32(p + 4, enc.big);
      h.value = pos + 8;
      return h;
    }
    h.vr[0] = static_cast<char>(p[4]);
    h.vr[1] = static_cast<char>(p[5]);
    if (!is_vr(h.vr))
      malformed("element " + dicom_tag_text(h.tag) + " " + at(pos) + " has no valid VR ('" +
                printable(p + 4, 2) + "')");
    if (has_long_length(h.vr)) {
      if (end - pos < 12)
        truncated("the header of element " + dicom_tag_text(h.tag) + " " + at(pos) + " is cut off");
      h.length = read32(p + 8, enc.big);
      h.value = pos + 12;
    } else {
      h.length = read16(p + 6, enc.big);
      h.value = pos + 8;
    }
    return h;
  }

  // Returns the position after the data set: `end` for a defined length, or just after the
  // item delimiter when `delimited`.
  int64_t walk_dataset(int64_t pos, int64_t end, bool delimited, Encoding enc, int depth,
                       bool top) {
    for (;;) {
      if (pos == end) {
        if (delimited)
          truncated("an item of undefined length has no item delimiter (ends " + at(pos) + ")");
        return pos;
      }
      const Header h = header(pos, end, enc);
      if (h.tag == kItemEnd) {
        if (!delimited)
          malformed("an item delimiter outside an item of undefined length " + at(pos));
        return h.value;
      }
      if ((h.tag >> 16) == 0xFFFE)
        malformed("unexpected " + dicom_tag_text(h.tag) + " " + at(pos) + " outside a sequence");
      DicomElement e;
      e.tag = h.tag;
      std::memcpy(e.vr, h.vr, 3);
      e.offset = h.value;
      if (h.length == kUndefinedLength) {
        e.length = -1;
        if (top && h.tag == kPixelData) {
          encapsulated = true;
          pos = walk_fragments(h.value, end, enc);
        } else {
          const bool sq =
              !enc.explicit_vr || std::strcmp(h.vr, "SQ") == 0 || std::strcmp(h.vr, "UN") == 0;
          if (!sq)
            malformed("element " + dicom_tag_text(h.tag) + " " + at(pos) + " of VR " + h.vr +
                      " has an undefined length");
          Encoding inner = enc;
          // UN of undefined length holds implicit VR little endian (PS3.5 6.2.2).
          if (enc.explicit_vr && std::strcmp(h.vr, "UN") == 0) inner = Encoding{false, false};
          pos = walk_sequence(h.value, end, true, inner, depth + 1, h.tag);
        }
      } else {
        e.length = h.length;
        if (int64_t(h.length) > end - h.value)
          truncated("element " + tag_label(h.tag) + " " + at(pos) + " announces " +
                    std::to_string(h.length) + " bytes, " + std::to_string(end - h.value) +
                    " remain");
        // A defined-length sequence in implicit VR cannot be told from a value without a
        // dictionary; its bytes are inside the bounds, which is what matters here.
        if (enc.explicit_vr && std::strcmp(h.vr, "SQ") == 0)
          walk_sequence(h.value, h.value + h.length, false, enc, depth + 1, h.tag);
        pos = h.value + h.length;
      }
      if (top) elements.push_back(e);
    }
  }

  int64_t walk_sequence(int64_t pos, int64_t end, bool delimited, Encoding enc, int depth,
                        uint32_t tag) {
    if (depth > kMaxDepth)
      malformed("sequences nested deeper than " + std::to_string(kMaxDepth) + " " + at(pos));
    for (;;) {
      if (pos == end) {
        if (delimited)
          truncated("sequence " + dicom_tag_text(tag) + " has no sequence delimiter (ends " +
                    at(pos) + ")");
        return pos;
      }
      if (end - pos < 8)
        truncated("an item header in sequence " + dicom_tag_text(tag) + " " + at(pos) +
                  " is cut off");
      const uint32_t item_tag =
          uint32_t(read16(data_ + pos, enc.big)) << 16 | read16(data_ + pos + 2, enc.big);
      const uint32_t length = read32(data_ + pos + 4, enc.big);
      if (item_tag == kSequenceEnd) {
        if (!delimited)
          malformed("a sequence delimiter inside sequence " + dicom_tag_text(tag) +
                    " of defined length " + at(pos));
        return pos + 8;
      }
      if (item_tag != kItem)
        malformed("sequence " + dicom_tag_text(tag) + " holds " + dicom_tag_text(item_tag) + " " +
                  at(pos) + " where an item (FFFE,E000) must be");
      if (length == kUndefinedLength) {
        pos = walk_dataset(pos + 8, end, true, enc, depth + 1, false);
      } else {
        if (int64_t(length) > end - (pos + 8))
          truncated("an item of sequence " + dicom_tag_text(tag) + " " + at(pos) + " announces " +
                    std::to_string(length) + " bytes, " + std::to_string(end - pos - 8) +
                    " remain");
        walk_dataset(pos + 8, pos + 8 + length, false, enc, depth + 1, false);
        pos += 8 + int64_t(length);
      }
    }
  }

  // Encapsulated pixel data (PS3.5 A.4): items of defined length, the first the basic
  // offset table, ended by a sequence delimiter.
  int64_t walk_fragments(int64_t pos, int64_t end, Encoding enc) {
    bool offset_table = true;
    for (;;) {
      if (end - pos < 8)
        truncated("the encapsulated pixel data (7FE0,0010) end without their sequence delimiter (" +
                  at(pos) + ")");
      const uint32_t item_tag =
          uint32_t(read16(data_ + pos, enc.big)) << 16 | read16(data_ + pos + 2, enc.big);
      const uint32_t length = read32(data_ + pos + 4, enc.big);
      if (item_tag == kSequenceEnd) return pos + 8;
      if (item_tag != kItem)
        malformed("the encapsulated pixel data hold " + dicom_tag_text(item_tag) + " " + at(pos) +
                  " where a fragment (FFFE,E000) must be");
      if (length == kUndefinedLength || int64_t(length) > end - (pos + 8))
        truncated("a pixel data fragment " + at(pos) + " announces " +
                  (length == kUndefinedLength ? std::string("an undefined length")
                                              : std::to_string(length) + " bytes, " +
                                                    std::to_string(end - pos - 8) + " remain"));
      if (!offset_table) fragments.push_back({pos + 8, int64_t(length)});
      offset_table = false;
      pos += 8 + int64_t(length);
    }
  }

  const std::string& name_;
  const uint8_t* data_;
  int64_t size_;
  const char* where_;
};

// Raw deflate (PS3.5 A.5: no zlib header), bounded by the ratio and the absolute limit.
std::vector<uint8_t> inflate_dataset(const std::string& name, const uint8_t* in, int64_t n) {
  const int64_t limit = std::min(kMaxInflatedBytes, n * kMaxDeflateRatio + 1024);
  std::vector<uint8_t> out;
  z_stream z;
  std::memset(&z, 0, sizeof z);
  ICH_CHECK(inflateInit2(&z, -MAX_WBITS) == Z_OK, name << ": cannot start zlib");
  z.next_in = const_cast<uint8_t*>(in);
  z.avail_in = static_cast<uInt>(n);  // files are read whole, far below 4 GiB
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (int64_t(out.size()) >= limit) {
      inflateEnd(&z);
      ICH_FAIL(name << ": the deflated data set inflates to more than " << limit
                    << " bytes; it is damaged or not a DICOM image");
    }
    const size_t before = out.size();
    out.resize(std::min<int64_t>(limit, std::max<int64_t>(int64_t(before) * 2, 1 << 16)));
    z.next_out = out.data() + before;
    z.avail_out = static_cast<uInt>(out.size() - before);
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(out.size() - z.avail_out);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK || (z.avail_in == 0 && z.avail_out != 0)) {
      inflateEnd(&z);
      ICH_FAIL(
          name << " is truncated or damaged: its deflated data set "
               << (rc == Z_OK || rc == Z_BUF_ERROR ? "ends early" : "is not a deflate stream"));
    }
  }
  inflateEnd(&z);
  return out;
}

}  // namespace

std::string dicom_tag_text(uint32_t tag) {
  char s[16];
  std::snprintf(s, sizeof s, "(%04X,%04X)", unsigned(tag >> 16), unsigned(tag & 0xFFFF));
  return s;
}

std::string dicom_uid_name(const std::string& uid) {
  gdcm::UIDs u;
  if (uid.empty() || !u.SetFromUID(uid.c_str())) return "";
  const char* name = u.GetName();
  return name ? name : "";
}

std::string dicom_uid_label(const std::string& uid) {
  if (uid.empty()) return "(none)";
  const std::string name = dicom_uid_name(uid);
  return uid + " (" + (name.empty() ? "not in the DICOM dictionary this reader knows" : name) + ")";
}

std::string error_message(const std::exception& e) {
  std::string m = e.what();
  for (const char* marker : {" [check `", " [at "}) {
    const size_t at = m.rfind(marker);
    if (at != std::string::npos) return m.substr(0, at);
  }
  return m;
}

bool looks_like_dicom(const std::string& name, const uint8_t* head, size_t n, std::string* why) {
  if (n >= 132 && std::memcmp(head + kPreambleBytes, "DICM", 4) == 0) return true;
  if (n >= 8) {
    const uint16_t group = read16(head, false);
    if (group == 0x0002 || group == 0x0008) return true;
  }
  std::string lower;
  const size_t slash = name.find_last_of('/');
  for (char c : name.substr(slash == std::string::npos ? 0 : slash + 1))
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* ext : {".dcm", ".dicom", ".ima"}) {
    const size_t k = std::strlen(ext);
    if (lower.size() > k && lower.compare(lower.size() - k, k, ext) == 0) return true;
  }
  if (why) {
    if (n == 0)
      *why = "empty";
    else
      *why = "no DICM marker at byte 128 and no data set at byte 0 (starts with '" +
             printable(head, std::min<size_t>(n, 8)) + "')";
  }
  return false;
}

DicomParsed::DicomParsed(const std::string& name, std::vector<uint8_t> bytes)
    : name_(name), bytes_(std::move(bytes)) {
  const uint8_t* b = bytes_.data();
  const int64_t n = static_cast<int64_t>(bytes_.size());
  int64_t pos = 0;
  has_preamble_ = n >= 132 && std::memcmp(b + kPreambleBytes, "DICM", 4) == 0;
  if (has_preamble_) pos = kPreambleBytes + 4;
  ICH_CHECK(n - pos >= 8, name_ << " is truncated: " << n << " bytes, too short for a DICOM file");

  // Group 0002, always explicit VR little endian (PS3.10 7.1).
  bool has_meta = false;
  while (n - pos >= 8 && read16(b + pos, false) == 0x0002) {
    has_meta = true;
    const uint32_t tag = uint32_t(read16(b + pos, false)) << 16 | read16(b + pos + 2, false);
    char vr[3] = {static_cast<char>(b[pos + 4]), static_cast<char>(b[pos + 5]), 0};
    ICH_CHECK(is_vr(vr), name_ << " is not a well-formed DICOM file: meta element "
                               << dicom_tag_text(tag) << " at byte " << pos << " has no valid VR ('"
                               << printable(b + pos + 4, 2) << "')");
    int64_t length = 0, value = 0;
    if (has_long_length(vr)) {
      ICH_CHECK(n - pos >= 12, name_ << " is truncated: its meta information is cut off");
      length = read32(b + pos + 8, false);
      value = pos + 12;
    } else {
      length = read16(b + pos + 6, false);
      value = pos + 8;
    }
    ICH_CHECK(length != kUndefinedLength && length <= n - value,
              name_ << " is truncated or damaged: meta element " << dicom_tag_text(tag)
                    << " at byte " << pos << " announces "
                    << (length == kUndefinedLength ? std::string("an undefined length")
                                                   : std::to_string(length) + " bytes, " +
                                                         std::to_string(n - value) + " remain"));
    if (tag == kTransferSyntaxTag)
      transfer_syntax_ = trim(reinterpret_cast<const char*>(b + value), size_t(length));
    pos = value + length;
  }
  if (!has_preamble_ && !has_meta && read16(b, false) != 0x0008)
    ICH_FAIL(name_ << " is not a DICOM file: it has no DICM marker at byte 128 and does not start "
                      "with a data set (group 0002 or 0008), whatever its name says");
  if (has_meta) {
    ICH_CHECK(!transfer_syntax_.empty(),
              name_ << " is not a well-formed DICOM file: its meta information has no "
                       "TransferSyntaxUID (0002,0010)");
  } else {
    // A bare data set: implicit VR little endian (PS3.5 A.1), or explicit when the bytes
    // after the first tag spell a VR (written so by some toolkits).
    const bool explicit_guess = n - pos >= 8 && is_vr(reinterpret_cast<const char*>(b + pos + 4));
    transfer_syntax_ = explicit_guess ? kExplicitLittle : kImplicitLittle;
  }

  // GE's private syntax: an implicit VR little endian data set with big endian pixels.
  if (transfer_syntax_ == kImplicitLittle || transfer_syntax_ == kGePrivateImplicit)
    explicit_vr_ = false;
  if (transfer_syntax_ == kExplicitBig) big_endian_ = true;
  if (transfer_syntax_ == kDeflatedLittle) {
    deflated_ = true;
    inflated_ = inflate_dataset(name_, b + pos, n - pos);
  }

  const uint8_t* data = deflated_ ? inflated_.data() : b;
  const int64_t size = deflated_ ? int64_t(inflated_.size()) : n;
  const int64_t start = deflated_ ? 0 : pos;
  ICH_CHECK(size - start >= 8,
            name_ << " is truncated: it ends after its meta information, without a data set");
  Walker walker(name_, data, size, deflated_ ? " of the inflated data set" : "");
  try {
    walker.walk_top(start, Encoding{big_endian_, explicit_vr_});
  } catch (const Error& e) {
    // A syntax PS3.5 does not define may not encode its data set as A.4 says; name it.
    if (dicom_uid_name(transfer_syntax_).empty())
      ICH_FAIL(name_ << " uses transfer syntax " << dicom_uid_label(transfer_syntax_)
                     << ", and its data set cannot be read: " << error_message(e));
    throw;
  }
  elements_ = std::move(walker.elements);
  fragments_ = std::move(walker.fragments);
  encapsulated_ = walker.encapsulated;
}

const uint8_t* DicomParsed::dataset() const {
  return deflated_ ? inflated_.data() : bytes_.data();
}
int64_t DicomParsed::dataset_size() const {
  return deflated_ ? int64_t(inflated_.size()) : int64_t(bytes_.size());
}

const DicomElement* DicomParsed::find(uint32_t tag) const {
  for (const DicomElement& e : elements_)
    if (e.tag == tag) return &e;
  return nullptr;
}

std::string DicomParsed::text(uint32_t tag) const {
  const DicomElement* e = find(tag);
  if (!e || e->length <= 0) return "";
  return trim(reinterpret_cast<const char*>(dataset() + e->offset), size_t(e->length));
}

std::vector<std::string> DicomParsed::texts(uint32_t tag) const {
  std::vector<std::string> out;
  const std::string all = text(tag);
  if (all.empty()) return out;
  size_t b = 0;
  for (;;) {
    const size_t e = all.find('\\', b);
    const std::string part = all.substr(b, e == std::string::npos ? std::string::npos : e - b);
    out.push_back(trim(part.data(), part.size()));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

std::vector<double> DicomParsed::decimals(uint32_t tag) const {
  std::vector<double> out;
  for (const std::string& s : texts(tag)) {
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    ICH_CHECK(
        !s.empty() && end == s.c_str() + s.size() && errno == 0 && std::isfinite(v),
        name_ << ": " << tag_label(tag) << " is not a list of numbers ('"
              << printable(reinterpret_cast<const uint8_t*>(text(tag).data()), text(tag).size())
              << "')");
    out.push_back(v);
  }
  return out;
}

long long DicomParsed::integer(uint32_t tag, long long fallback) const {
  const std::string s = text(tag);
  if (s.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  ICH_CHECK(end == s.c_str() + s.size() && errno == 0,
            name_ << ": " << tag_label(tag) << " is not an integer ('"
                  << printable(reinterpret_cast<const uint8_t*>(s.data()), s.size()) << "')");
  return v;
}

int DicomParsed::unsigned_short(uint32_t tag, int fallback) const {
  const DicomElement* e = find(tag);
  if (!e) return fallback;
  ICH_CHECK(e->length == 2, name_ << ": " << tag_label(tag) << " has " << e->length
                                  << " bytes; an unsigned short has 2");
  return read16(dataset() + e->offset, big_endian_);
}

}  // namespace ich::data
