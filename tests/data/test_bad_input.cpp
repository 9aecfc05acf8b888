// Bad input: each case gives one ich::Error naming the file, no giant allocation, and no
// half-written output; the commands exit non-zero with one line on stderr.
#include <zlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/ctich.h"
#include "data/image_io.h"
#include "data/nifti.h"
#include "data/phantom.h"
#include "data/prepare.h"
#include "data/slices.h"
#include "data_test_util.h"

using namespace ich::data;
using Catch::Matchers::Contains;
using ich::test::TempDir;
namespace fs = std::filesystem;

namespace {

SynthOptions tiny_synth(int patients = 2) {
  SynthOptions o;
  o.patients = patients;
  o.size = 32;
  o.slices = 4;
  o.slice_jitter = 0;
  o.seed = 5;
  return o;
}

std::string good_nifti(const TempDir& dir, const std::string& name) {
  std::vector<int16_t> v(16 * 16 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = int16_t(i);
  const std::string path = dir / name;
  write_nifti(path, 16, 16, 4, kNiftiInt16, v.data());
  return path;
}

}  // namespace

TEST_CASE("bad input: a truncated NIfTI file", "[data]") {
  TempDir dir("bad-trunc");
  const std::string path = good_nifti(dir, "t.nii");
  std::vector<uint8_t> bytes = ich::test::file_bytes(path);
  bytes.resize(bytes.size() - 100);  // data cut short
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti(path), Contains(path) && Contains("truncated"));
  bytes.resize(200);  // header cut short
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti_header(path), Contains(path) && Contains("truncated"));
  ich::test::write_bytes(path, {});
  REQUIRE_THROWS_WITH(read_nifti_header(path), Contains(path));
}

TEST_CASE("bad input: a wrong magic", "[data]") {
  TempDir dir("bad-magic");
  const std::string path = good_nifti(dir, "m.nii");
  std::vector<uint8_t> bytes = ich::test::file_bytes(path);
  std::memcpy(bytes.data() + 344, "ni1\0", 4);  // a two-file header's magic
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti(path), Contains(path) && Contains("wrong magic"));
  bytes[0] = 'P';  // not even the header size
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti(path), Contains(path) && Contains("not a NIfTI file"));
}

TEST_CASE("bad input: a gzip stream that ends early", "[data]") {
  TempDir dir("bad-gz");
  // Noisy values so that the compressed stream is long enough to cut in its data part.
  std::vector<int16_t> v(64 * 64 * 8);
  uint32_t s = 1;
  for (auto& x : v) x = int16_t((s = s * 1664525u + 1013904223u) >> 20);
  const std::string path = dir / "g.nii.gz";
  write_nifti(path, 64, 64, 8, kNiftiInt16, v.data());
  const std::vector<uint8_t> whole = ich::test::file_bytes(path);
  REQUIRE(read_nifti(path).values.size() == v.size());
  for (size_t keep : {whole.size() / 2, size_t(40)}) {
    INFO("kept " << keep << " of " << whole.size() << " bytes");
    ich::test::write_bytes(path, std::vector<uint8_t>(whole.begin(), whole.begin() + keep));
    REQUIRE_THROWS_WITH(read_nifti(path), Contains(path));
  }
}

TEST_CASE("bad input: absurd dimensions are refused before any allocation", "[data]") {
  TempDir dir("bad-dims");
  const std::string path = good_nifti(dir, "d.nii");
  std::vector<uint8_t> bytes = ich::test::file_bytes(path);
  auto set_dim = [&](int i, int16_t value) { std::memcpy(bytes.data() + 40 + 2 * i, &value, 2); };
  // 30000^3 voxels: more than the reader ever accepts.
  set_dim(1, 30000);
  set_dim(2, 30000);
  set_dim(3, 30000);
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti(path), Contains(path) && Contains("voxels"));
  // 4000x4000x60 (1.9 GB of int16) in a 2 kB file: refused as truncated, nothing allocated.
  set_dim(1, 4000);
  set_dim(2, 4000);
  set_dim(3, 60);
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti(path), Contains(path) && Contains("truncated"));
  // Negative and zero dimensions.
  set_dim(1, -5);
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti(path), Contains(path) && Contains("absurd"));
  set_dim(1, 16);
  set_dim(0, 9);
  ich::test::write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(read_nifti(path), Contains(path) && Contains("dim[0]"));

  // The same in a gzip file, where the file size says little: a NIfTI-2 header announcing
  // 2^15 x 2^14 x 2 int16 voxels (2 GiB) in a stream of a few hundred bytes is refused.
  std::vector<int16_t> v(16 * 16 * 4, 0);
  NiftiWriteOptions o;
  o.version = 2;
  const std::string plain = dir / "d2.nii";
  write_nifti(plain, 16, 16, 4, kNiftiInt16, v.data(), o);
  std::vector<uint8_t> raw = ich::test::file_bytes(plain);
  const int64_t big[3] = {int64_t(1) << 15, int64_t(1) << 14, 2};
  for (int i = 0; i < 3; ++i) std::memcpy(raw.data() + 16 + 8 * (i + 1), &big[i], 8);
  const std::string gz = dir / "d2.nii.gz";
  gzFile f = gzopen(gz.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, raw.data(), unsigned(raw.size())) == int(raw.size()));
  gzclose(f);
  REQUIRE_THROWS_WITH(read_nifti(gz), Contains(gz) && Contains("gzip file can hold"));
  ich::test::write_bytes(plain, raw);
  REQUIRE_THROWS_WITH(read_nifti(plain), Contains(plain) && Contains("truncated"));
}

TEST_CASE("bad input: a mask whose shape differs from its scan", "[data]") {
  TempDir dir("bad-mask");
  const std::string data = dir / "ds";
  write_synthetic_dataset(data, tiny_synth());
  std::vector<uint8_t> m(32 * 32 * 3, 0);
  write_nifti(data + "/masks/002.nii", 32, 32, 3, kNiftiUint8, m.data());
  REQUIRE_THROWS_WITH(open_ctich(data), Contains("masks/002.nii is 32x32x3") &&
                                            Contains("ct_scans/002.nii is 32x32x4"));
  // prepare refuses before writing anything.
  PrepareOptions po;
  po.data_dir = data;
  po.out_dir = dir / "prepared";
  REQUIRE_THROWS_WITH(prepare_dataset(po), Contains("masks/002.nii"));
  CHECK_FALSE(fs::exists(po.out_dir));
}

TEST_CASE("bad input: a CSV with a missing column or a slice out of range", "[data]") {
  TempDir dir("bad-csv");
  const std::string data = dir / "ds";
  write_synthetic_dataset(data, tiny_synth());
  const std::string csv = data + "/" + kDiagnosisCsv;
  const std::string good = ich::test::read_text(csv);

  std::string no_subdural = good;
  no_subdural.replace(no_subdural.find(",Subdural"), 9, ",Subdura1");
  ich::test::write_text(csv, no_subdural);
  REQUIRE_THROWS_WITH(open_ctich(data), Contains(csv) && Contains("no column 'Subdural'"));

  ich::test::write_text(csv, good + "2,5,0,0,0,0,0,1,0\n");  // patient 2 has 4 slices
  REQUIRE_THROWS_WITH(open_ctich(data),
                      Contains(csv) && Contains("slice 5 of patient 2 is out of range"));

  ich::test::write_text(csv, good + "2,0,0,0,0,0,0,1,0\n");
  REQUIRE_THROWS_WITH(open_ctich(data), Contains(csv) && Contains("SliceNumber 0"));

  ich::test::write_text(csv, good + "9,1,0,0,0,0,0,1,0\n");
  REQUIRE_THROWS_WITH(open_ctich(data), Contains(csv) && Contains("patient 9"));

  ich::test::write_text(csv, good + "2,1,0,0,0,0,0,1\n");
  REQUIRE_THROWS_WITH(open_ctich(data), Contains(csv) && Contains("fields"));

  ich::test::write_text(csv, good);
  CHECK(open_ctich(data).diagnosis.size() == 8);
}

TEST_CASE("bad input: an empty folder", "[data]") {
  TempDir dir("bad-empty");
  REQUIRE_THROWS_WITH(open_ctich(dir.str()), Contains(dir.str()) && Contains("ct_scans"));
  fs::create_directories(dir / "ct_scans");
  fs::create_directories(dir / "masks");
  REQUIRE_THROWS_WITH(open_ctich(dir.str()), Contains("ct_scans") && Contains("holds no scans"));
  REQUIRE_THROWS_WITH(open_image_folders(dir / "ct_scans", dir / "masks"),
                      Contains("ct_scans") && Contains("no PNG, JPEG or BMP"));
  REQUIRE_THROWS_WITH(open_prepared(dir.str()), Contains("manifest.csv"));
}

TEST_CASE("bad input: an unwritable output folder leaves nothing behind", "[data]") {
  TempDir dir("bad-out");
  const std::string data = dir / "ds";
  write_synthetic_dataset(data, tiny_synth());
  // A regular file where a folder should be: unwritable for every user, root included.
  ich::test::write_text(dir / "file", "x");
  PrepareOptions po;
  po.data_dir = data;
  po.out_dir = dir / "file/prepared";
  REQUIRE_THROWS_WITH(prepare_dataset(po), Contains("prepared"));
  REQUIRE_THROWS_WITH(write_synthetic_dataset(dir / "file/synth", tiny_synth()), Contains("synth"));
  // An existing folder that is not an earlier output is never replaced.
  fs::create_directories(dir / "precious");
  ich::test::write_text(dir / "precious/notes.txt", "keep me");
  po.out_dir = dir / "precious";
  REQUIRE_THROWS_WITH(prepare_dataset(po), Contains("refusing"));
  CHECK(ich::test::read_text(dir / "precious/notes.txt") == "keep me");
  std::vector<std::string> entries = ich::test::folder_entries(dir.str());
  std::sort(entries.begin(), entries.end());
  CHECK(entries == std::vector<std::string>{"ds", "file", "precious"});
}

TEST_CASE("bad input: a failure half-way through prepare leaves no output", "[data]") {
  TempDir dir("bad-half");
  const std::string data = dir / "ds";
  write_synthetic_dataset(data, tiny_synth(3));
  // Patient 3's data is cut short after its header: only found when its voxels are read,
  // after patients 1 and 2 were written to the staging folder.
  const std::string scan = data + "/ct_scans/003.nii";
  std::vector<uint8_t> bytes = ich::test::file_bytes(scan);
  bytes.resize(bytes.size() - 10);
  ich::test::write_bytes(scan, bytes);
  PrepareOptions po;
  po.data_dir = data;
  po.out_dir = dir / "prepared";
  REQUIRE_THROWS_WITH(prepare_dataset(po), Contains(scan) && Contains("truncated"));
  CHECK(ich::test::folder_entries(dir.str()) == std::vector<std::string>{"ds"});
}

TEST_CASE("bad input: damaged PNG files name the file", "[data]") {
  TempDir dir("bad-png");
  Image8 img;
  img.w = img.h = 20;
  img.pixels.assign(400, 7);
  write_png(dir / "a.png", img);
  std::vector<uint8_t> bytes = ich::test::file_bytes(dir / "a.png");
  ich::test::write_bytes(dir / "cut.png",
                         std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  REQUIRE_THROWS_WITH(read_image(dir / "cut.png"), Contains("cut.png"));
  std::vector<uint8_t> huge = bytes;
  const uint8_t width[4] = {0x7f, 0xff, 0xff, 0xff};  // IHDR width 2^31 - 1
  std::memcpy(huge.data() + 16, width, 4);
  ich::test::write_bytes(dir / "huge.png", huge);
  REQUIRE_THROWS_WITH(read_image(dir / "huge.png"), Contains("huge.png"));
  REQUIRE_THROWS_WITH(read_image(dir / "missing.png"), Contains("missing.png"));
  // Found by fuzz_image: an IDAT chunk whose length field says 1.5 GB made stb_image grow its
  // buffer to that size before noticing the file was 300 bytes long.
  std::vector<uint8_t> long_chunk = bytes;
  const uint8_t length[4] = {0x5b, 0x00, 0x00, 0xbe};
  std::memcpy(long_chunk.data() + 33, length, 4);  // the chunk after IHDR (8 + 25 bytes)
  ich::test::write_bytes(dir / "long_chunk.png", long_chunk);
  REQUIRE_THROWS_WITH(read_image(dir / "long_chunk.png"),
                      Contains("long_chunk.png") && Contains("runs past the end"));
  // Found by fuzz_image: stb_image takes almost any bytes for a TGA (no magic), so 18 bytes
  // announcing 65535x65535 pixels kept it busy for seconds. Only PNG/JPEG/BMP are decoded.
  std::vector<uint8_t> tga(18, 0);
  tga[2] = 2;                                    // uncompressed true-colour
  tga[12] = tga[13] = tga[14] = tga[15] = 0xff;  // width, height 65535
  tga[16] = 32;
  ich::test::write_bytes(dir / "x.tga", tga);
  REQUIRE_THROWS_WITH(read_image(dir / "x.tga"),
                      Contains("x.tga") && Contains("not a PNG, JPEG or BMP"));
  // Found by fuzz_image: a JPEG Huffman table declaring more than 256 codes made stb_image
  // write past its table (undefined behaviour inside the library, even in stbi_info).
  std::vector<uint8_t> jpeg = {0xff, 0xd8, 0xff, 0xc4, 0x01, 0x3f, 0x00};  // DHT, 319 bytes
  for (int i = 0; i < 16; ++i) jpeg.push_back(i >= 14 ? 150 : 0);          // 300 codes
  jpeg.resize(jpeg.size() + 300, 0x01);
  jpeg.insert(jpeg.end(), {0xff, 0xd9});
  ich::test::write_bytes(dir / "dht.jpg", jpeg);
  REQUIRE_THROWS_WITH(read_image(dir / "dht.jpg"), Contains("dht.jpg") && Contains("300 codes"));
  CHECK(read_image(dir / "a.png").pixels == img.pixels);
}

TEST_CASE("bad input: the commands exit non-zero with one line naming the file", "[data]") {
  TempDir dir("bad-cli");
  const std::string path = good_nifti(dir, "x.nii");
  std::vector<uint8_t> bytes = ich::test::file_bytes(path);
  bytes.resize(300);
  ich::test::write_bytes(path, bytes);

  const auto info = ich::test::run_ichseg("info " + path);
  CHECK(info.exit_code != 0);
  CHECK_THAT(info.output, Contains(path) && Contains("truncated"));
  CHECK(std::count(info.output.begin(), info.output.end(), '\n') == 1);

  const auto prepare =
      ich::test::run_ichseg("prepare --data " + (dir / "nowhere") + " --out " + (dir / "p"));
  CHECK(prepare.exit_code != 0);
  CHECK_THAT(prepare.output, Contains("nowhere"));
  CHECK(std::count(prepare.output.begin(), prepare.output.end(), '\n') == 1);
  CHECK_FALSE(fs::exists(dir / "p"));

  const auto synth = ich::test::run_ichseg("synth --out " + (dir / "x.nii/s") +
                                           " --patients 1 --size 32 --slices 2");
  CHECK(synth.exit_code != 0);
  CHECK(std::count(synth.output.begin(), synth.output.end(), '\n') == 1);

  const auto bad_flag = ich::test::run_ichseg("synth --out " + (dir / "s") + " --patients many");
  CHECK(bad_flag.exit_code != 0);
  CHECK_FALSE(fs::exists(dir / "s"));
}
