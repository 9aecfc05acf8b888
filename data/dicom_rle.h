// DICOM RLE Lossless (PS3.5 Annex G), decoded by our own loop: GDCM 3.0.21's RLE decoder
// trusts the segment offsets of the RLE header, and a damaged header crashes it (found by
// fuzz/fuzz_dicom.cpp). Every offset and every run is checked against the fragment and the
// image here.
//
// One frame is one fragment: a 64-byte header (the number of segments, then 15 offsets, all
// uint32 little endian), then one PackBits-coded segment per byte of a pixel, the most
// significant byte first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ich::data {

// The frame as rows * columns containers of `bytes_per_pixel` bytes, little endian (as the
// native pixel loops read them). Throws ich::Error naming `name` when the fragment is damaged.
std::vector<uint8_t> decode_dicom_rle(const std::string& name, const uint8_t* fragment,
                                      int64_t length, int rows, int columns, int bytes_per_pixel);

}  // namespace ich::data
