#include "data/dicom_file.h"

#include <gdcmDataElement.h>
#include <gdcmFragment.h>
#include <gdcmImage.h>
#include <gdcmPhotometricInterpretation.h>
#include <gdcmPixelFormat.h>
#include <gdcmSequenceOfFragments.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>

#include "core/error.h"
#include "data/dicom_codestream.h"
#include "data/dicom_rle.h"
#include "data/fileutil.h"

namespace ich::data {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "GDCM's decoded buffers are read as little endian");

constexpr const char* kCtImageStorage = "1.2.840.10008.5.1.4.1.1.2";
constexpr const char* kRleLossless = "1.2.840.10008.1.2.5";

struct SyntaxInfo {
  const char* uid;
  bool encapsulated;
  bool lossy;
};
// What decode_dicom_slice handles; the first four and RLE by our own loops, the others by
// GDCM.
constexpr SyntaxInfo kSyntaxes[] = {
    {"1.2.840.10008.1.2", false, false},       // implicit VR little endian
    {"1.2.840.10008.1.2.1", false, false},     // explicit VR little endian
    {"1.2.840.10008.1.2.2", false, false},     // explicit VR big endian (retired)
    {"1.2.840.10008.1.2.1.99", false, false},  // deflated explicit VR little endian
    {"1.2.840.10008.1.2.5", true, false},      // RLE lossless
    {"1.2.840.10008.1.2.4.50", true, true},    // JPEG baseline (process 1)
    {"1.2.840.10008.1.2.4.51", true, true},    // JPEG extended (process 2 & 4)
    {"1.2.840.10008.1.2.4.57", true, false},   // JPEG lossless (process 14)
    {"1.2.840.10008.1.2.4.70", true, false},   // JPEG lossless, first-order prediction
    {"1.2.840.10008.1.2.4.80", true, false},   // JPEG-LS lossless
    {"1.2.840.10008.1.2.4.81", true, true},    // JPEG-LS near-lossless
    {"1.2.840.10008.1.2.4.90", true, false},   // JPEG 2000 lossless only
    {"1.2.840.10008.1.2.4.91", true, true},    // JPEG 2000 (lossless or lossy)
};

const SyntaxInfo* find_syntax(const std::string& uid) {
  for (const SyntaxInfo& s : kSyntaxes)
    if (uid == s.uid) return &s;
  return nullptr;
}

void silence_gdcm() {
  static std::once_flag once;
  std::call_once(once, [] {
    gdcm::Trace::SetDebug(false);
    gdcm::Trace::SetWarning(false);
    gdcm::Trace::SetError(false);
  });
}

constexpr uint32_t tag(uint16_t g, uint16_t e) {
  return dicom_tag(g, e);
}

// A numeric attribute with exactly `count` values (or absent: returns false).
bool fixed_decimals(const DicomParsed& f, uint32_t t, const char* name, size_t count, double* out) {
  const std::vector<double> v = f.decimals(t);
  if (v.empty()) return false;
  ICH_CHECK(v.size() == count, f.name() << ": " << name << " " << dicom_tag_text(t) << " has "
                                        << v.size() << " values, " << count << " expected");
  for (size_t i = 0; i < count; ++i) out[i] = v[i];
  return true;
}

double optional_decimal(const DicomParsed& f, uint32_t t, double fallback) {
  const std::vector<double> v = f.decimals(t);
  return v.empty() ? fallback : v[0];
}

// The problem of an image that is not a CT slice we read, or "".
std::string slice_problem(const DicomSliceHeader& h, bool has_geometry[3]) {
  const std::string sop = dicom_uid_label(h.sop_class);
  if (h.pixels == DicomPixelKind::kNone)
    return "has no pixel data (" + (h.sop_class.empty() ? std::string("no SOP class") : sop) + ")";
  if (h.modality != "CT")
    return "is " + (h.modality.empty() ? std::string("of no modality") : h.modality) + " (" + sop +
           "), not CT";
  if (h.frames > 1)
    return "is a multi-frame object (" + std::to_string(h.frames) + " frames, " + sop +
           "); only single-frame CT Image Storage slices are read";
  if (h.sop_class != kCtImageStorage)
    return "is " + sop + ", not a CT Image Storage slice (" + kCtImageStorage +
           "); multi-frame and derived objects are not read";
  if (!dicom_transfer_syntax_supported(h.transfer_syntax))
    return "uses transfer syntax " + dicom_uid_label(h.transfer_syntax) +
           ", which this reader cannot decode";
  if (h.samples_per_pixel != 1 ||
      (h.photometric != "MONOCHROME2" && h.photometric != "MONOCHROME1"))
    return "is not a greyscale image (PhotometricInterpretation " + h.photometric + ", " +
           std::to_string(h.samples_per_pixel) + " samples per pixel)";
  if (!has_geometry[0]) return "has no ImagePositionPatient (0020,0032)";
  if (!has_geometry[1]) return "has no ImageOrientationPatient (0020,0037)";
  if (!has_geometry[2]) return "has no PixelSpacing (0028,0030)";
  return "";
}

// Checks of the pixel attributes of a slice without problem.
void check_pixel_attributes(const DicomParsed& f, DicomSliceHeader& h) {
  const std::string& n = f.name();
  ICH_CHECK(h.rows >= 1 && h.columns >= 1,
            n << ": an image of " << h.rows << " rows and " << h.columns << " columns");
  // Compressed data can announce any size in a few bytes; the bound keeps what a small file can
  // make the reader allocate below a few hundred MB.
  ICH_CHECK(int64_t(h.rows) * h.columns <= kMaxDicomSlicePixels,
            n << ": a slice of " << h.columns << "x" << h.rows << " pixels; at most "
              << kMaxDicomSlicePixels << " (4096x4096) are read");
  const int64_t pixels = int64_t(h.rows) * h.columns;
  if (h.pixels == DicomPixelKind::kInteger) {
    ICH_CHECK(
        h.bits_allocated == 8 || h.bits_allocated == 16 || h.bits_allocated == 32,
        n << ": BitsAllocated (0028,0100) is " << h.bits_allocated << "; 8, 16 or 32 are read");
    ICH_CHECK(h.bits_stored >= 1 && h.bits_stored <= h.bits_allocated,
              n << ": BitsStored (0028,0101) is " << h.bits_stored << " with BitsAllocated "
                << h.bits_allocated);
    ICH_CHECK(h.high_bit >= h.bits_stored - 1 && h.high_bit < h.bits_allocated,
              n << ": HighBit (0028,0102) is " << h.high_bit << " with BitsStored " << h.bits_stored
                << " and BitsAllocated " << h.bits_allocated);
    ICH_CHECK(h.pixel_representation == 0 || h.pixel_representation == 1,
              n << ": PixelRepresentation (0028,0103) is " << h.pixel_representation);
    ICH_CHECK(!h.encapsulated || h.high_bit == h.bits_stored - 1,
              n << ": compressed pixel data with HighBit " << h.high_bit << " and BitsStored "
                << h.bits_stored << " (only HighBit = BitsStored - 1 is read)");
  } else {
    const int bits = h.pixels == DicomPixelKind::kFloat32 ? 32 : 64;
    ICH_CHECK(h.bits_allocated == 0 || h.bits_allocated == bits,
              n << ": float pixel data with BitsAllocated " << h.bits_allocated);
    h.bits_allocated = h.bits_stored = bits;
    h.high_bit = bits - 1;
    ICH_CHECK(!h.encapsulated, n << ": float pixel data cannot be encapsulated");
  }
  const SyntaxInfo* syntax = find_syntax(h.transfer_syntax);
  ICH_CHECK(syntax->encapsulated == h.encapsulated,
            n << ": " << (h.encapsulated ? "encapsulated" : "native") << " pixel data in "
              << dicom_uid_label(h.transfer_syntax));
  if (h.encapsulated) {
    ICH_CHECK(!f.pixel_fragments().empty(),
              n << ": the encapsulated pixel data (7FE0,0010) hold no fragment");
    return;
  }
  const uint32_t pixel_tag = h.pixels == DicomPixelKind::kFloat32   ? tag(0x7FE0, 0x0008)
                             : h.pixels == DicomPixelKind::kFloat64 ? tag(0x7FE0, 0x0009)
                                                                    : tag(0x7FE0, 0x0010);
  const int64_t need = pixels * (h.bits_allocated / 8);
  const int64_t have = f.find(pixel_tag)->length;
  ICH_CHECK(have >= need, n << " is truncated: its pixel data " << dicom_tag_text(pixel_tag)
                            << " hold " << have << " bytes, a " << h.rows << "x" << h.columns
                            << " image of " << h.bits_allocated << "-bit pixels needs " << need);
  ICH_CHECK(have <= need + 1, n << ": its pixel data " << dicom_tag_text(pixel_tag) << " hold "
                                << have << " bytes, a " << h.rows << "x" << h.columns
                                << " image of " << h.bits_allocated << "-bit pixels has " << need
                                << " (more than one frame without NumberOfFrames?)");
}

// Stored integers of `Bytes`-byte containers -> HU; the byte order and width are template
// arguments so that the loop has no branch per pixel.
template <int Bytes, bool Big>
void containers_to_hu(const uint8_t* p, int64_t n, const DicomSliceHeader& h, float* out) {
  const int shift = h.high_bit + 1 - h.bits_stored;
  const int64_t range = int64_t(1) << h.bits_stored;  // 2^bits_stored
  const uint32_t mask = uint32_t(range - 1);
  const int64_t sign =
      h.pixel_representation == 1 ? range / 2 : range;  // never reached if unsigned
  const double slope = h.rescale_slope, inter = h.rescale_intercept;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* q = p + i * Bytes;
    uint32_t raw = 0;
    for (int b = 0; b < Bytes; ++b)
      raw |= uint32_t(q[Big ? b : Bytes - 1 - b]) << (8 * (Bytes - 1 - b));
    const int64_t bits = int64_t((raw >> shift) & mask);
    const int64_t stored = bits >= sign ? bits - range : bits;  // two's complement when signed
    out[i] = static_cast<float>(double(stored) * slope + inter);
  }
}

// Stored integers of `bits_allocated`-bit containers -> HU.
void integers_to_hu(const uint8_t* p, int64_t n, bool big, const DicomSliceHeader& h, float* out) {
  switch (h.bits_allocated / 8 * 2 + (big ? 1 : 0)) {
    case 2:
    case 3:
      return containers_to_hu<1, false>(p, n, h, out);
    case 4:
      return containers_to_hu<2, false>(p, n, h, out);
    case 5:
      return containers_to_hu<2, true>(p, n, h, out);
    case 8:
      return containers_to_hu<4, false>(p, n, h, out);
    default:
      return containers_to_hu<4, true>(p, n, h, out);
  }
}

template <typename T>
void floats_to_hu(const uint8_t* p, int64_t n, bool big, const DicomSliceHeader& h, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, p + i * int64_t(sizeof(T)), sizeof(T));
    if (big)
      for (size_t k = 0; k < sizeof(T) / 2; ++k) std::swap(b[k], b[sizeof(T) - 1 - k]);
    T v;
    std::memcpy(&v, b, sizeof(T));
    out[i] = h.has_rescale ? static_cast<float>(double(v) * h.rescale_slope + h.rescale_intercept)
                           : static_cast<float>(v);
  }
}

// The codecs under GDCM (IJG libjpeg, CharLS, OpenJPEG) print what they find wrong in a
// damaged stream to stderr, and IJG libjpeg decodes through some damage with nothing but such
// a warning. So `decode` runs with fd 2 sent to a temporary file, and the first line it got is
// returned in `said`: the caller refuses the slice when there is one, quoting it, and a bad
// file still gives one line.
// One decode at a time (a process has one fd 2; nor does GDCM promise its codecs are
// reentrant).
bool run_quoting_stderr(const std::function<bool()>& decode, std::string* said) {
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> lock(one_at_a_time);
  std::FILE* sink = std::tmpfile();
  const int saved = sink ? ::dup(2) : -1;
  if (saved < 0) {
    if (sink) std::fclose(sink);
    return decode();
  }
  std::fflush(stderr);
  ::dup2(::fileno(sink), 2);
  const bool ok = decode();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  char line[256] = {0};
  std::rewind(sink);
  if (std::fgets(line, sizeof line, sink)) {
    *said = line;
    while (!said->empty() && (said->back() == '\n' || said->back() == '\r')) said->pop_back();
  }
  std::fclose(sink);
  return ok;
}

// Encapsulated pixel data through GDCM's codec for the transfer syntax; returns the decoded
// bits_allocated-bit containers in host (little endian) order.
std::vector<char> decode_with_gdcm(const DicomParsed& f, const DicomSliceHeader& h) {
  silence_gdcm();
  const std::string& ts = h.transfer_syntax;
  const CodestreamKind kind =
      ts == "1.2.840.10008.1.2.4.80" || ts == "1.2.840.10008.1.2.4.81"   ? CodestreamKind::kJpegLs
      : ts == "1.2.840.10008.1.2.4.90" || ts == "1.2.840.10008.1.2.4.91" ? CodestreamKind::kJpeg2000
                                                                         : CodestreamKind::kJpeg;
  const DicomFragment& first = f.pixel_fragments()[0];
  check_codestream_matches(
      f.name(), read_codestream_header(f.name(), f.dataset() + first.offset, first.length, kind),
      h.rows, h.columns, h.bits_allocated);
  gdcm::SmartPointer<gdcm::SequenceOfFragments> fragments = new gdcm::SequenceOfFragments;
  for (const DicomFragment& fr : f.pixel_fragments()) {
    gdcm::Fragment frag;
    const uint8_t* bytes = f.dataset() + fr.offset;
    if (&fr == &first && kind == CodestreamKind::kJpeg) {
      const std::vector<uint8_t> stream = jpeg_without_application_segments(bytes, fr.length);
      frag.SetByteValue(reinterpret_cast<const char*>(stream.data()),
                        static_cast<uint32_t>(stream.size()));
    } else {
      frag.SetByteValue(reinterpret_cast<const char*>(bytes), static_cast<uint32_t>(fr.length));
    }
    fragments->AddFragment(frag);
  }
  gdcm::DataElement pixel_data(gdcm::Tag(0x7FE0, 0x0010));
  pixel_data.SetValue(*fragments);
  pixel_data.SetVLToUndefined();  // asserts unless the VR is still unset
  pixel_data.SetVR(gdcm::VR::OB);

  gdcm::Image image;
  image.SetNumberOfDimensions(2);
  image.SetDimension(0, static_cast<unsigned>(h.columns));
  image.SetDimension(1, static_cast<unsigned>(h.rows));
  image.SetPixelFormat(gdcm::PixelFormat(1, static_cast<unsigned short>(h.bits_allocated),
                                         static_cast<unsigned short>(h.bits_stored),
                                         static_cast<unsigned short>(h.high_bit),
                                         static_cast<unsigned short>(h.pixel_representation)));
  image.SetPhotometricInterpretation(h.photometric == "MONOCHROME1"
                                         ? gdcm::PhotometricInterpretation::MONOCHROME1
                                         : gdcm::PhotometricInterpretation::MONOCHROME2);
  image.SetTransferSyntax(gdcm::TransferSyntax::GetTSType(h.transfer_syntax.c_str()));
  image.SetDataElement(pixel_data);
  const int64_t need = int64_t(h.rows) * h.columns * (h.bits_allocated / 8);
  ICH_CHECK(int64_t(image.GetBufferLength()) == need,
            f.name() << ": GDCM announces " << image.GetBufferLength() << " decoded bytes for a "
                     << h.rows << "x" << h.columns << " image of " << h.bits_allocated
                     << "-bit pixels (" << need << ")");
  std::vector<char> buffer(static_cast<size_t>(need));
  std::string said;
  const bool decoded = run_quoting_stderr([&] { return image.GetBuffer(buffer.data()); }, &said);
  // A codec that warns has met damage it decoded around (IJG libjpeg goes on through a scan
  // cut short, with a warning and wrong pixels): refused as well.
  ICH_CHECK(decoded && said.empty(),
            f.name() << ": its " << dicom_uid_label(h.transfer_syntax)
                     << " pixel data cannot be decoded (damaged, or not what the header "
                        "says)"
                     << (said.empty() ? "" : ": the codec says '" + said + "'"));
  return buffer;
}

}  // namespace

bool dicom_transfer_syntax_supported(const std::string& uid) {
  return find_syntax(uid) != nullptr;
}

DicomSliceHeader dicom_slice_header(const DicomParsed& f) {
  DicomSliceHeader h;
  h.path = f.name();
  h.transfer_syntax = f.transfer_syntax();
  h.sop_class = f.text(tag(0x0008, 0x0016));
  h.sop_instance = f.text(tag(0x0008, 0x0018));
  h.study_uid = f.text(tag(0x0020, 0x000D));
  h.series_uid = f.text(tag(0x0020, 0x000E));
  h.frame_of_reference = f.text(tag(0x0020, 0x0052));
  h.modality = f.text(tag(0x0008, 0x0060));
  h.series_description = f.text(tag(0x0008, 0x103E));
  h.image_type = f.text(tag(0x0008, 0x0008));
  h.series_number = f.integer(tag(0x0020, 0x0011), 0);
  h.instance_number = f.integer(tag(0x0020, 0x0013), 0);
  h.rows = f.unsigned_short(tag(0x0028, 0x0010), 0);
  h.columns = f.unsigned_short(tag(0x0028, 0x0011), 0);
  h.frames = f.integer(tag(0x0028, 0x0008), 1);
  h.samples_per_pixel = f.unsigned_short(tag(0x0028, 0x0002), 1);
  h.photometric = f.text(tag(0x0028, 0x0004));
  h.bits_allocated = f.unsigned_short(tag(0x0028, 0x0100), 0);
  h.bits_stored = f.unsigned_short(tag(0x0028, 0x0101), h.bits_allocated);
  h.high_bit = f.unsigned_short(tag(0x0028, 0x0102), h.bits_stored - 1);
  h.pixel_representation = f.unsigned_short(tag(0x0028, 0x0103), 0);
  if (f.find(tag(0x7FE0, 0x0010)))
    h.pixels = DicomPixelKind::kInteger;
  else if (f.find(tag(0x7FE0, 0x0008)))
    h.pixels = DicomPixelKind::kFloat32;
  else if (f.find(tag(0x7FE0, 0x0009)))
    h.pixels = DicomPixelKind::kFloat64;
  h.encapsulated = f.encapsulated();
  const SyntaxInfo* syntax = find_syntax(h.transfer_syntax);
  h.lossy = (syntax && syntax->lossy) || f.text(tag(0x0028, 0x2110)) == "01";

  bool has_geometry[3];
  has_geometry[0] = fixed_decimals(f, tag(0x0020, 0x0032), "ImagePositionPatient", 3, h.position);
  has_geometry[1] =
      fixed_decimals(f, tag(0x0020, 0x0037), "ImageOrientationPatient", 6, h.orientation);
  has_geometry[2] = fixed_decimals(f, tag(0x0028, 0x0030), "PixelSpacing", 2, h.pixel_spacing);
  h.slice_thickness = optional_decimal(f, tag(0x0018, 0x0050), 0);
  h.spacing_between_slices = optional_decimal(f, tag(0x0018, 0x0088), 0);
  h.gantry_tilt = optional_decimal(f, tag(0x0018, 0x1120), 0);
  const std::vector<double> slope = f.decimals(tag(0x0028, 0x1053));
  const std::vector<double> inter = f.decimals(tag(0x0028, 0x1052));
  h.has_rescale = !slope.empty() || !inter.empty();
  if (!slope.empty()) h.rescale_slope = slope[0];
  if (!inter.empty()) h.rescale_intercept = inter[0];

  // A CT image whose data set ends before its pixel data was cut at an element boundary.
  ICH_CHECK(h.pixels != DicomPixelKind::kNone || h.sop_class != kCtImageStorage,
            f.name() << " is truncated or damaged: a CT image without pixel data (7FE0,0010)");
  h.problem = slice_problem(h, has_geometry);
  if (!h.problem.empty()) return h;

  ICH_CHECK(h.rescale_slope != 0, f.name() << ": RescaleSlope (0028,1053) is 0");
  ICH_CHECK(h.pixel_spacing[0] > 0 && h.pixel_spacing[1] > 0,
            f.name() << ": PixelSpacing (0028,0030) is " << h.pixel_spacing[0] << "\\"
                     << h.pixel_spacing[1] << "; both must be positive");
  // Two orthogonal unit vectors, to the precision of a decimal string; then normalised.
  double* r = h.orientation;
  double* c = h.orientation + 3;
  const double rn = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
  const double cn = std::sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
  const double dot = r[0] * c[0] + r[1] * c[1] + r[2] * c[2];
  ICH_CHECK(std::fabs(rn - 1) < 1e-3 && std::fabs(cn - 1) < 1e-3 && std::fabs(dot) < 1e-3,
            f.name() << ": ImageOrientationPatient (0020,0037) is not two orthogonal unit vectors"
                     << " (lengths " << rn << " and " << cn << ", cosine " << dot << ")");
  for (int i = 0; i < 3; ++i) {
    r[i] /= rn;
    c[i] /= cn;
  }
  check_pixel_attributes(f, h);
  return h;
}

void decode_dicom_slice(const DicomParsed& f, const DicomSliceHeader& h, float* out) {
  ICH_CHECK(h.problem.empty(), h.path << " " << h.problem);
  const int64_t n = int64_t(h.rows) * h.columns;
  if (h.encapsulated && h.transfer_syntax == kRleLossless) {
    ICH_CHECK(f.pixel_fragments().size() == 1, f.name() << ": its RLE pixel data hold "
                                                        << f.pixel_fragments().size()
                                                        << " fragments; one frame is one fragment");
    const DicomFragment& fr = f.pixel_fragments()[0];
    const std::vector<uint8_t> decoded = decode_dicom_rle(
        f.name(), f.dataset() + fr.offset, fr.length, h.rows, h.columns, h.bits_allocated / 8);
    integers_to_hu(decoded.data(), n, false, h, out);
    return;
  }
  if (h.encapsulated) {
    const std::vector<char> decoded = decode_with_gdcm(f, h);
    integers_to_hu(reinterpret_cast<const uint8_t*>(decoded.data()), n, false, h, out);
    return;
  }
  const uint32_t pixel_tag = h.pixels == DicomPixelKind::kFloat32   ? tag(0x7FE0, 0x0008)
                             : h.pixels == DicomPixelKind::kFloat64 ? tag(0x7FE0, 0x0009)
                                                                    : tag(0x7FE0, 0x0010);
  const uint8_t* p = f.dataset() + f.find(pixel_tag)->offset;
  if (h.pixels == DicomPixelKind::kFloat32)
    floats_to_hu<float>(p, n, f.big_endian(), h, out);
  else if (h.pixels == DicomPixelKind::kFloat64)
    floats_to_hu<double>(p, n, f.big_endian(), h, out);
  else
    integers_to_hu(p, n, f.big_endian(), h, out);
}

DicomSlice read_dicom_slice(const std::string& name, std::vector<uint8_t> bytes) {
  std::string why;
  ICH_CHECK(looks_like_dicom(name, bytes.data(), bytes.size(), &why),
            name << " is not a DICOM file: " << why);
  const DicomParsed parsed(name, std::move(bytes));
  DicomSlice s;
  s.header = dicom_slice_header(parsed);
  ICH_CHECK(s.header.problem.empty(), name << " " << s.header.problem);
  s.hu.resize(size_t(s.header.rows) * s.header.columns);
  decode_dicom_slice(parsed, s.header, s.hu.data());
  return s;
}

DicomSlice read_dicom_slice(const std::string& path) {
  return read_dicom_slice(path, read_file_bytes(path));
}

}  // namespace ich::data
