// The structure of one DICOM file, walked and checked by our own code before any library
// decodes a byte of it.
//
// Why our own walk: Debian's GDCM is built with its assertions on, and a file cut short in
// its header ends the process inside the library (assert -> abort); a file cut short in its
// pixel data is read as if the missing bytes were zeros, and a cut JPEG fragment decodes to
// wrong values without an error. So, as data/nifti.cpp does for NIfTI headers, every element
// of the file is walked here first: each length must lie inside the file (or inside its
// sequence item), each nested sequence must end, encapsulated pixel data must end with its
// sequence delimiter. Only files that pass reach the codecs (data/dicom_file.cpp).
//
// Accepted: a PS3.10 file (128-byte preamble, "DICM", the group 0002 meta information in
// explicit VR little endian) or a bare PS3.5 data set without preamble (with or without a
// group 0002), in implicit VR little endian, explicit VR little endian, explicit VR big
// endian (retired, still in archives) or deflated explicit VR little endian (inflated here
// with zlib). Every other transfer syntax encodes its data set in explicit VR little endian
// (PS3.5 A.4); its pixel data are then either native or encapsulated fragments.
//
// The walk allocates nothing in proportion to what a length field announces: values stay
// where they are in the file bytes (or the inflated data set), referenced by offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace ich::data {

constexpr uint32_t dicom_tag(uint16_t group, uint16_t element) {
  return (uint32_t(group) << 16) | element;
}
// "(0028,0010)"
std::string dicom_tag_text(uint32_t tag);

// The name GDCM's dictionary gives a UID ("CT Image Storage", "JPEG-LS Lossless Image
// Compression"), or "" when it has none.
std::string dicom_uid_name(const std::string& uid);
// "1.2.840.10008.1.2.4.80 (JPEG-LS Lossless Image Compression)"
std::string dicom_uid_label(const std::string& uid);

// An ich::Error's message without the " [at file:line]" the checking macros append, to quote
// one error inside another.
std::string error_message(const std::exception& e);

struct DicomElement {
  uint32_t tag = 0;
  char vr[3] = {0, 0, 0};  // as written in explicit VR; "" in implicit VR
  int64_t offset = 0;      // of the value, in DicomParsed::dataset()
  int64_t length = 0;      // -1: undefined length (a sequence, or encapsulated pixel data)
};

struct DicomFragment {
  int64_t offset = 0;  // in DicomParsed::dataset()
  int64_t length = 0;
};

// True when the start of a file claims it is DICOM: "DICM" at byte 128, or a bare data set
// whose first element is of group 0002 or 0008 (little endian, the only groups a data set
// starts with in practice), or a name ending in .dcm / .dicom / .ima (any case). Anything
// else (a README, a thumbnail, an operating system's metadata file) is not DICOM; `why` then
// says what it is in a few words. head is the file's first bytes (132 are enough).
bool looks_like_dicom(const std::string& name, const uint8_t* head, size_t n, std::string* why);

class DicomParsed {
 public:
  // Walks the whole file; throws ich::Error naming `name` when it is not a well-formed DICOM
  // file (truncated, a length past the end, an unterminated sequence, a bad VR, ...).
  DicomParsed(const std::string& name, std::vector<uint8_t> bytes);

  const std::string& name() const { return name_; }
  // (0002,0010), or "1.2.840.10008.1.2" (implicit VR little endian) for a bare data set
  // without group 0002, as PS3.5 prescribes.
  const std::string& transfer_syntax() const { return transfer_syntax_; }
  bool has_preamble() const { return has_preamble_; }
  bool big_endian() const { return big_endian_; }
  bool explicit_vr() const { return explicit_vr_; }
  bool deflated() const { return !inflated_.empty() || deflated_; }

  // The data set's bytes (the file, or the inflated data set of a deflated file).
  const uint8_t* dataset() const;
  int64_t dataset_size() const;

  // Top-level elements of the data set in file order (sequences are walked, not listed).
  const std::vector<DicomElement>& elements() const { return elements_; }
  const DicomElement* find(uint32_t tag) const;
  // Encapsulated pixel data (7FE0,0010 of undefined length): its fragments after the basic
  // offset table, in order. Empty for native pixel data.
  const std::vector<DicomFragment>& pixel_fragments() const { return fragments_; }
  bool encapsulated() const { return encapsulated_; }

  // Values of top-level elements. text(): the bytes with leading/trailing spaces and trailing
  // NULs removed ("" when absent). The numeric readers throw naming the file and the tag when
  // the value is malformed; `present` (when given) says whether the element is there at all.
  std::string text(uint32_t tag) const;
  std::vector<std::string> texts(uint32_t tag) const;  // backslash-separated values
  std::vector<double> decimals(uint32_t tag) const;    // DS; {} when absent or empty
  // IS; `fallback` when absent or empty.
  long long integer(uint32_t tag, long long fallback) const;
  // US (2 bytes in the data set's byte order); `fallback` when absent.
  int unsigned_short(uint32_t tag, int fallback) const;

 private:
  std::string name_;
  std::vector<uint8_t> bytes_;
  std::vector<uint8_t> inflated_;
  std::string transfer_syntax_;
  bool has_preamble_ = false;
  bool big_endian_ = false;
  bool explicit_vr_ = true;
  bool deflated_ = false;
  bool encapsulated_ = false;
  std::vector<DicomElement> elements_;
  std::vector<DicomFragment> fragments_;
};

}  // namespace ich::data
