// safetensors: round trip with metadata, every corruption refused with a useful message,
// no half file under the final name.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"

using namespace ich;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the build tree, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::path(ICH_BINARY_DIR) / "test_tmp" / name;
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A file by hand: the 8-byte length, the header text, the data.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype with metadata", "[safetensors]") {
  TempDir dir("safetensors_roundtrip");
  const std::string path = dir.file("a.safetensors");
  const Tensor w =
      Tensor::from_host(std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -8.5f}, {1, 2, 3});
  const Tensor u8 = Tensor::from_host(std::vector<uint8_t>{0, 255, 17}, {3});
  const Tensor i16 = Tensor::from_host(std::vector<int16_t>{-1000, 3071}, {2});
  const Tensor i32 = Tensor::from_host(std::vector<int32_t>{-7, 1 << 30}, {2, 1});
  const Tensor i64 = Tensor::from_host(std::vector<int64_t>{int64_t(1) << 40}, {1});
  save_safetensors(path, {{"w", w}, {"mask", u8}, {"hu", i16}, {"idx", i32}, {"n", i64}},
                   {{"epoch", "3"}, {"note", "dice 0.71"}});

  const SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.at("epoch") == "3");
  CHECK(f.metadata.at("note") == "dice 0.71");
  REQUIRE(f.tensors.size() == 5);
  const auto t = f.to_tensors();
  CHECK(t.at("w").shape() == Shape{1, 2, 3});
  CHECK(t.at("w").to_host() == w.to_host());
  CHECK(t.at("mask").to_host<uint8_t>() == u8.to_host<uint8_t>());
  CHECK(t.at("hu").to_host<int16_t>() == i16.to_host<int16_t>());
  CHECK(t.at("idx").to_host<int32_t>() == i32.to_host<int32_t>());
  CHECK(t.at("n").to_host<int64_t>() == i64.to_host<int64_t>());

  // The header is the real format: 8-byte aligned, dtype names and offsets as expected.
  const std::string bytes = read_bytes(path);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  CHECK(header_len % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_len));
  CHECK(header["w"]["dtype"] == "F32");
  CHECK(header["hu"]["dtype"] == "I16");
  CHECK(header["w"]["shape"] == nlohmann::json::array({1, 2, 3}));
  CHECK(header["__metadata__"]["epoch"] == "3");
  CHECK(bytes.size() == 8 + header_len + 24 + 3 + 4 + 8 + 8);
}

TEST_CASE("safetensors: a shape () entry (PyTorch scalars) loads as (1)", "[safetensors]") {
  TempDir dir("safetensors_scalar");
  const std::string path = dir.file("s.safetensors");
  std::string data(8, '\0');
  data[0] = 5;
  write_bytes(path, make_file(R"({"nbt":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})", data));
  const Tensor t = load_safetensors(path).tensors.at("nbt").to_tensor();
  CHECK(t.shape() == Shape{1});
  CHECK(t.to_host<int64_t>()[0] == 5);
}

TEST_CASE("safetensors: every corruption is an ich::Error naming the file and the problem",
          "[safetensors]") {
  TempDir dir("safetensors_corrupt");
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"w", Tensor::from_host(std::vector<float>{1, 2, 3, 4}, {2, 2})}});
  const std::string bytes = read_bytes(good);
  const std::string bad = dir.file("bad.safetensors");

  SECTION("truncated inside the length") {
    write_bytes(bad, bytes.substr(0, 5));
    CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains(bad) && Catch::Contains("truncated"));
  }
  SECTION("truncated inside the data") {
    write_bytes(bad, bytes.substr(0, bytes.size() - 4));
    CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains("'w'") &&
                                                 Catch::Contains("out of range") &&
                                                 Catch::Contains("truncated"));
  }
  SECTION("header length beyond the file") {
    std::string b = bytes;
    b[1] = 0x7f;  // header length += 32512
    write_bytes(bad, b);
    CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains("goes beyond the end of the file"));
  }
  // A header of our own over its data (16 zero bytes unless said), and what the error says.
  struct BadHeader {
    const char* problem;
    const char* header;
    const char* message;
    size_t data_bytes = 16;
  };
  for (const BadHeader& b : {
           BadHeader{"bad JSON", R"({"w": {"dtype": "F32", )", "not valid JSON"},
           BadHeader{"header not an object", "[1, 2]", "JSON object", 0},
           BadHeader{"offsets out of range",
                     R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})",
                     "out of range"},
           BadHeader{"unknown dtype",
                     R"({"w":{"dtype":"F16","shape":[2,4],"data_offsets":[0,16]}})", "dtype 'F16'"},
           BadHeader{"shape does not match the byte range",
                     R"({"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}})",
                     "needs 24 bytes but data_offsets span 16"},
           BadHeader{"overlapping tensors",
                     R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                     "overlaps"},
           BadHeader{"bytes that belong to no tensor",
                     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                     "8 bytes after the last tensor"},
           BadHeader{"negative shape entry",
                     R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", "size >= 0"},
       }) {
    SECTION(b.problem) {
      write_bytes(bad, make_file(b.header, std::string(b.data_bytes, '\0')));
      CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains(b.message));
    }
  }
  SECTION("missing file") {
    CHECK_THROWS_WITH(load_safetensors(dir.file("nope.safetensors")),
                      Catch::Contains("cannot open"));
  }
}

TEST_CASE("safetensors: a failed save leaves neither a half file nor a temporary",
          "[safetensors]") {
  TempDir dir("safetensors_atomic");
  const std::string path = dir.file("ckpt.safetensors");
  const Tensor w = Tensor::from_host(std::vector<float>{1, 2}, {2});
  save_safetensors(path, {{"w", w}}, {{"v", "1"}});
  const std::string before = read_bytes(path);

  // Refused before anything is written: duplicate names, undefined tensors.
  CHECK_THROWS_WITH(save_safetensors(path, {{"w", w}, {"w", w}}), Catch::Contains("given twice"));
  CHECK_THROWS_WITH(save_safetensors(path, {{"w", Tensor()}}), Catch::Contains("undefined"));
  CHECK(read_bytes(path) == before);

  // Fails at the rename (the final name is a folder): the temporary is removed.
  const std::string folder = dir.file("taken");
  fs::create_directories(fs::path(folder) / "inside");
  CHECK_THROWS_WITH(save_safetensors(folder, {{"w", w}}), Catch::Contains("cannot rename"));
  // A folder that does not exist: nothing can be created.
  CHECK_THROWS_WITH(save_safetensors(dir.file("no/such/dir/x.safetensors"), {{"w", w}}),
                    Catch::Contains("cannot create"));
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    ++entries;
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  }
  CHECK(entries == 2);  // ckpt.safetensors and the folder
  CHECK(load_safetensors(path).metadata.at("v") == "1");
}
