// Bytes from a file shown in a message: printable ASCII as it is, anything else as \xNN, at
// most `limit` bytes, so that a damaged file's magic or value can be quoted on one line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ich::data {

inline std::string printable_bytes(const uint8_t* p, size_t n, size_t limit = 64) {
  std::string out;
  for (size_t i = 0; i < n && i < limit; ++i) {
    const unsigned char c = p[i];
    if (c >= 32 && c < 127) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

}  // namespace ich::data
