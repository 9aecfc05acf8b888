#include "apps/npy.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace ich::app {

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    ICH_CHECK(shape[i] >= 0, "npy shape entry " << i << " is negative");
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) dict += " ";
    count *= shape[i];
  }
  dict += "), }";
  // Magic (6) + version (2) + header length (2) + dict + padding + '\n' is a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  const uint16_t header_len = static_cast<uint16_t>(dict.size());

  const std::string tmp = path + ".tmp";
  {
    std::ofstream o(tmp, std::ios::binary);
    ICH_CHECK(o, "cannot write " << tmp << ": is the folder writable?");
    o.write("\x93NUMPY\x01\x00", 8);
    const char len[2] = {char(header_len & 0xff), char(header_len >> 8)};
    o.write(len, 2);
    o.write(dict.data(), std::streamsize(dict.size()));
    o.write(reinterpret_cast<const char*>(data), std::streamsize(count * sizeof(float)));
    o.flush();
    ICH_CHECK(o.good(), "writing " << tmp << " failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    ICH_FAIL("cannot rename " << tmp << " to " << path << ": " << ec.message());
  }
}

std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape) {
  std::ifstream in(path, std::ios::binary);
  ICH_CHECK(in, "cannot open " << path);
  char head[10];
  in.read(head, 10);
  ICH_CHECK(in.gcount() == 10 && std::memcmp(head, "\x93NUMPY", 6) == 0,
            path << " is not a .npy file (bad magic)");
  ICH_CHECK(head[6] == 1, path << ": only .npy format version 1.0 is read");
  const size_t header_len = size_t((unsigned char)head[8]) | size_t((unsigned char)head[9]) << 8;
  std::string dict(header_len, '\0');
  in.read(dict.data(), std::streamsize(header_len));
  ICH_CHECK(size_t(in.gcount()) == header_len, path << ": header truncated");
  ICH_CHECK(dict.find("'descr': '<f4'") != std::string::npos &&
                dict.find("'fortran_order': False") != std::string::npos,
            path << ": expected little-endian float32 in C order, header is " << dict);
  const size_t open = dict.find("'shape': (");
  const size_t close = dict.find(')', open);
  ICH_CHECK(open != std::string::npos && close != std::string::npos, path << ": no shape in header");
  std::vector<int64_t> dims;
  int64_t count = 1;
  const std::string inner = dict.substr(open + 10, close - open - 10);
  size_t pos = 0;
  while (pos < inner.size()) {
    while (pos < inner.size() && (inner[pos] == ' ' || inner[pos] == ',')) ++pos;
    if (pos >= inner.size()) break;
    size_t used = 0;
    const long long v = std::stoll(inner.substr(pos), &used);
    ICH_CHECK(v >= 0 && v < (1LL << 40), path << ": absurd dimension " << v);
    dims.push_back(v);
    count *= v;
    ICH_CHECK(count < (1LL << 34), path << ": array too large");
    pos += used;
  }
  std::vector<float> data(static_cast<size_t>(count));
  in.read(reinterpret_cast<char*>(data.data()), std::streamsize(count * sizeof(float)));
  ICH_CHECK(in.gcount() == std::streamsize(count * sizeof(float)),
            path << ": data truncated (" << in.gcount() << " of " << count * 4 << " bytes)");
  if (shape) *shape = dims;
  return data;
}

}  // namespace ich::app
