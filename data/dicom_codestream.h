// The frame header of a JPEG, JPEG-LS or JPEG 2000 stream in encapsulated DICOM pixel data,
// read by our own code and checked against the DICOM header before GDCM decodes the stream.
//
// Why: GDCM (Debian's build, assertions on) sizes its output from the DICOM header but
// decodes what the stream says; when the two disagree (a stream of another size or precision
// than Rows/Columns/BitsAllocated announce) it aborts on an assertion instead of returning an
// error (found by fuzz/fuzz_dicom.cpp). So the stream's own size, components and precision
// must be the image's before it reaches the codec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ich::data {

struct CodestreamHeader {
  int width = 0, height = 0, components = 0;
  int precision = 0;  // bits per sample
};

enum class CodestreamKind { kJpeg, kJpegLs, kJpeg2000 };

// The frame header of the stream that starts `bytes`: for JPEG and JPEG-LS, SOI, then marker
// segments each inside the stream, one frame header (SOFn / SOF55), up to the start of the
// scan (SOS); for JPEG 2000, SOC then SIZ of a codestream, or of the one in a JP2 file.
// Throws ich::Error naming `name` when there is none, or the structure is cut off or broken.
CodestreamHeader read_codestream_header(const std::string& name, const uint8_t* bytes,
                                        int64_t length, CodestreamKind kind);

// The JPEG stream without its application (APP0-APP15) and comment segments, which carry
// nothing a greyscale decode uses. Why: IJG warns about some of them (a JFIF revision it does
// not know), and GDCM asserts on any warning while it reads the header (found by fuzz_dicom).
// The stream must have passed read_codestream_header.
std::vector<uint8_t> jpeg_without_application_segments(const uint8_t* bytes, int64_t length);

// Throws naming `name` unless the stream holds one component of columns x rows samples whose
// precision needs exactly bits_allocated-bit containers.
void check_codestream_matches(const std::string& name, const CodestreamHeader& stream, int rows,
                              int columns, int bits_allocated);

}  // namespace ich::data
