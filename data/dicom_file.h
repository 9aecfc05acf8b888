// One DICOM file as a CT slice: the attributes a series is built from, and its pixels in HU.
//
// A file that is well formed (data/dicom_parse.h) but is not a slice this reader takes gets
// a `problem` (a non-CT object, a multi-frame object, a transfer syntax it cannot decode, a
// colour image, a slice without its geometry) instead of an error, so that a folder can list
// every series it holds; reading such a slice is refused with that problem. A file that is
// damaged (a malformed value of an attribute the reader needs, pixel data shorter than the
// image) is an ich::Error naming the file.
//
// Pixels: native (implicit/explicit little endian, explicit big endian, deflated) and RLE
// (data/dicom_rle.h) are read by our own loops; JPEG (baseline, extended, lossless), JPEG-LS
// and JPEG 2000 are decoded by GDCM's codecs (its IJG libjpeg 8/12/16-bit, CharLS and
// OpenJPEG builds), whose messages on stderr become part of the error of a damaged stream.
// Any BitsAllocated of 8/16/32, any BitsStored and HighBit (native), signed or unsigned;
// float pixel data (FloatPixelData / DoubleFloatPixelData) too, which may hold NaN or Inf:
// those are passed through as they are, for the caller to count (data/nonfinite.h).
// HU = stored * RescaleSlope + RescaleIntercept, computed in double, per slice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dicom_parse.h"

namespace ich::data {

enum class DicomPixelKind { kNone, kInteger, kFloat32, kFloat64 };

// The largest slice read (CT slices are 512x512, a few 1024x1024).
constexpr int64_t kMaxDicomSlicePixels = int64_t(4096) * 4096;

struct DicomSliceHeader {
  std::string path;
  std::string transfer_syntax;  // UID
  std::string sop_class;        // UID
  std::string sop_instance, study_uid, series_uid, frame_of_reference;
  std::string modality, series_description, image_type;
  long long series_number = 0, instance_number = 0;  // listed, never used to order slices
  int rows = 0, columns = 0;
  long long frames = 1;
  int samples_per_pixel = 1;
  std::string photometric;
  int bits_allocated = 0, bits_stored = 0, high_bit = 0, pixel_representation = 0;
  DicomPixelKind pixels = DicomPixelKind::kNone;
  bool encapsulated = false;
  bool lossy = false;  // a lossy transfer syntax, or LossyImageCompression (0028,2110) = 01
  // Geometry, LPS millimetres. orientation: row direction cosine (the direction of increasing
  // column index) then column direction cosine, both normalised. pixel_spacing as in the tag:
  // {distance between rows, distance between columns}.
  double position[3] = {0, 0, 0};
  double orientation[6] = {1, 0, 0, 0, 1, 0};
  double pixel_spacing[2] = {1, 1};
  double slice_thickness = 0;         // 0 when absent
  double spacing_between_slices = 0;  // 0 when absent
  double gantry_tilt = 0;             // degrees, (0018,1120); 0 when absent
  bool has_rescale = false;           // false: neither slope nor intercept present (1 and 0 used)
  double rescale_slope = 1, rescale_intercept = 0;
  // Why this file cannot be read as a CT slice; "" when it can.
  std::string problem;
};

// The transfer syntaxes whose pixel data this reader decodes (see above).
bool dicom_transfer_syntax_supported(const std::string& uid);

// The header of a parsed file; throws ich::Error naming the file when it is damaged.
DicomSliceHeader dicom_slice_header(const DicomParsed& file);

// Pixels of a slice without problem, in HU, into out: rows * columns floats, row by row
// (pixel (row j, column i) at out[j * columns + i]). Throws naming the file when the pixel
// data cannot be decoded.
void decode_dicom_slice(const DicomParsed& file, const DicomSliceHeader& header, float* out);

struct DicomSlice {
  DicomSliceHeader header;
  std::vector<float> hu;  // (rows, columns)
};

// One file by name (read whole), or bytes already in memory (the fuzz target): parsed,
// checked, and decoded; a slice with a problem is refused with it.
DicomSlice read_dicom_slice(const std::string& path);
DicomSlice read_dicom_slice(const std::string& name, std::vector<uint8_t> bytes);

}  // namespace ich::data
