#include "engine/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace ich {

namespace {

// huggingface/safetensors refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

bool parse_dtype(const std::string& name, DType* out) {
  static const std::pair<const char*, DType> table[] = {{"F32", DType::f32},
                                                        {"U8", DType::u8},
                                                        {"I16", DType::i16},
                                                        {"I32", DType::i32},
                                                        {"I64", DType::i64}};
  for (const auto& [n, d] : table) {
    if (name == n) {
      *out = d;
      return true;
    }
  }
  return false;
}

bool host_is_little_endian() {
  const uint16_t probe = 1;
  return *reinterpret_cast<const uint8_t*>(&probe) == 1;
}

void write_u64_le(uint64_t v, uint8_t* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t read_u64_le(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(in[i]) << (8 * i);
  return v;
}

// Writes everything or throws; closes the file in every case.
class TempFile {
 public:
  explicit TempFile(const std::string& final_path) {
    static std::atomic<uint64_t> counter{0};
    path_ = final_path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    file_ = std::fopen(path_.c_str(), "wb");
    ICH_CHECK(file_ != nullptr, "cannot create " << path_ << " (to be renamed to " << final_path
                                                 << "): check that the folder exists and is "
                                                    "writable");
  }
  ~TempFile() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t bytes) {
    ICH_CHECK(bytes == 0 || std::fwrite(data, 1, bytes, file_) == bytes,
              "writing " << path_ << " failed (disk full?)");
  }
  void commit(const std::string& final_path) {
    const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    ICH_CHECK(flushed && closed, "writing " << path_ << " failed (disk full?)");
    ICH_CHECK(std::rename(path_.c_str(), final_path.c_str()) == 0,
              "cannot rename " << path_ << " to " << final_path
                               << " (is the final name a folder, or not writable?)");
    committed_ = true;
  }

 private:
  std::string path_;
  FILE* file_ = nullptr;
  bool committed_ = false;
};

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::u8:
      return "U8";
    case DType::i16:
      return "I16";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
  }
  return "?";
}

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

Tensor HostTensor::to_tensor(const Device& device) const {
  const Shape tensor_shape = shape.empty() ? Shape{1} : Shape(shape);
  check_shape(tensor_shape, "safetensors tensor");
  Tensor t = Tensor::empty(tensor_shape, device, dtype);
  ICH_CHECK(bytes.size() == t.nbytes(), "safetensors tensor of shape "
                                            << shape_str(tensor_shape) << " holds " << bytes.size()
                                            << " bytes, expected " << t.nbytes());
  t.backend().copy_from_host(t.raw_data(), bytes.data(), bytes.size());
  return t;
}

std::map<std::string, Tensor> SafetensorsFile::to_tensors(const Device& device) const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) out.emplace(name, t.to_tensor(device));
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  ICH_CHECK(host_is_little_endian(), "safetensors: big-endian hosts are not supported");
  // Larger items first (as huggingface/safetensors orders them), so every tensor starts at a
  // multiple of its item size.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const size_t i : order) {
    const auto& [name, t] = tensors[i];
    ICH_CHECK(!name.empty() && name != "__metadata__",
              "safetensors: tensor name '" << name << "' is not allowed (" << path << ")");
    ICH_CHECK(names.insert(name).second,
              "safetensors: tensor name '" << name << "' given twice (" << path << ")");
    ICH_CHECK(t.defined(), "safetensors: tensor '" << name << "' is undefined (" << path << ")");
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // data starts 8-byte aligned

  TempFile file(path);
  uint8_t length[8];
  write_u64_le(header_text.size(), length);
  file.write(length, sizeof length);
  file.write(header_text.data(), header_text.size());
  std::vector<uint8_t> staging;
  for (const size_t i : order) {
    const Tensor& t = tensors[i].second;
    staging.resize(t.nbytes());
    t.backend().copy_to_host(staging.data(), t.raw_data(), staging.size());
    file.write(staging.data(), staging.size());
  }
  file.commit(path);
}

SafetensorsFile load_safetensors(const std::string& path) {
  ICH_CHECK(host_is_little_endian(), "safetensors: big-endian hosts are not supported");
  std::ifstream in(path, std::ios::binary);
  ICH_CHECK(in.good(), "cannot open " << path);
  in.seekg(0, std::ios::end);
  const std::streamoff file_size_signed = in.tellg();
  ICH_CHECK(file_size_signed >= 0, "cannot read the size of " << path << " (is it a folder?)");
  const uint64_t file_size = static_cast<uint64_t>(file_size_signed);
  in.seekg(0, std::ios::beg);
  ICH_CHECK(file_size >= 8, path << " is truncated: " << file_size
                                 << " bytes, but a safetensors file starts with an 8-byte "
                                    "header length");
  uint8_t length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  const uint64_t header_size = read_u64_le(length_bytes);
  ICH_CHECK(header_size <= kMaxHeaderBytes, path << ": header length " << header_size
                                                 << " is above the 100 MB limit; not a "
                                                    "safetensors file?");
  ICH_CHECK(header_size <= file_size - 8,
            path << ": header length " << header_size << " goes beyond the end of the file ("
                 << file_size << " bytes); the file is truncated or not safetensors");
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  ICH_CHECK(in.good(), "reading the header of " << path << " failed");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& e) {
    ICH_FAIL(path << ": the header is not valid JSON (" << e.what() << ")");
  }
  ICH_CHECK(header.is_object(),
            path << ": the header must be a JSON object, got " << header.type_name());

  const uint64_t data_size = file_size - 8 - header_size;
  SafetensorsFile out;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      ICH_CHECK(entry.is_object(), path << ": __metadata__ must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        ICH_CHECK(value.is_string(),
                  path << ": __metadata__ value of '" << key << "' is not a string");
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    ICH_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                  entry.contains("data_offsets"),
              where << " needs dtype, shape and data_offsets");
    ICH_CHECK(entry["dtype"].is_string(), where << ": dtype is not a string");
    const std::string dtype_text = entry["dtype"].get<std::string>();
    HostTensor t;
    ICH_CHECK(parse_dtype(dtype_text, &t.dtype),
              where << " has dtype '" << dtype_text
                    << "', which ichseg does not read (F32, I64, I32, I16, U8)");
    const auto& shape = entry["shape"];
    ICH_CHECK(shape.is_array(), where << ": shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : shape) {
      ICH_CHECK(d.is_number_unsigned(),
                where << ": shape " << shape.dump() << " holds something other than a size >= 0");
      const uint64_t dim = d.get<uint64_t>();
      ICH_CHECK(dim == 0 || numel <= std::numeric_limits<uint64_t>::max() / 8 / dim,
                where << ": shape " << shape.dump() << " is too large");
      numel *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offsets = entry["data_offsets"];
    ICH_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                  offsets[1].is_number_unsigned(),
              where << ": data_offsets must be [begin, end], got " << offsets.dump());
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    ICH_CHECK(begin <= end && end <= data_size,
              where << ": data_offsets [" << begin << ", " << end << ") are out of range; the "
                    << "data holds " << data_size << " bytes (truncated file?)");
    ICH_CHECK(numel * dtype_size(t.dtype) == end - begin,
              where << ": shape " << shape.dump() << " of " << dtype_text << " needs "
                    << numel * dtype_size(t.dtype) << " bytes but data_offsets span "
                    << end - begin);
    ranges.push_back({begin, end, name});
    out.tensors.emplace(name, std::move(t));
  }

  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    ICH_CHECK(r.begin >= covered, path << ": tensor '" << r.name << "' [" << r.begin << ", "
                                       << r.end << ") overlaps tensor '" << ranges[i - 1].name
                                       << "'");
    ICH_CHECK(r.begin == covered, path << ": " << r.begin - covered << " bytes before tensor '"
                                       << r.name << "' belong to no tensor");
    covered = r.end;
  }
  ICH_CHECK(covered == data_size, path << ": " << data_size - covered
                                       << " bytes after the last tensor belong to no tensor");

  for (const Range& r : ranges) {
    HostTensor& t = out.tensors.at(r.name);
    t.bytes.resize(r.end - r.begin);
    in.seekg(static_cast<std::streamoff>(8 + header_size + r.begin), std::ios::beg);
    in.read(reinterpret_cast<char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
    ICH_CHECK(in.good() || t.bytes.empty(),
              "reading tensor '" << r.name << "' of " << path << " failed");
  }
  return out;
}

}  // namespace ich
