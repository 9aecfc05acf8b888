// NumPy .npy files (format version 1.0), float32 little-endian, C order: the interop format
// of `ichseg predict --probabilities`. Written through a temporary name and a rename.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ich::app {

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);

// Reads back what write_npy_f32 writes ('<f4', C order); anything else throws ich::Error.
std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape);

}  // namespace ich::app
