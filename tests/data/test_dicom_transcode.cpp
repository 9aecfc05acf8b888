// DICOM files another tool wrote: the series of data/dicom_write.h transcoded by DCMTK's
// command-line tools (Debian package dcmtk: an implementation independent of GDCM) into every
// transfer syntax CT archives use; each must decode to exactly the HU of the original.
// JPEG 2000: DCMTK's free tools have no JPEG 2000 codec, so those files come from gdcmconv
// (libgdcm-tools), i.e. GDCM's own encoder: it checks our path through the codec, not an
// independent writer. Both packages are test dependencies installed by scripts/setup.sh; a
// missing tool fails the test with what to install.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "data/dicom.h"
#include "data/dicom_parse.h"
#include "data/dicom_write.h"
#include "data_test_util.h"
#include "dicom_test_util.h"

using namespace ich::data;
using Catch::Matchers::Contains;
using ich::test::TempDir;
namespace fs = std::filesystem;

namespace {

bool have_tool(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

void require_tool(const std::string& tool, const std::string& package) {
  if (!have_tool(tool))
    FAIL(tool << " is not installed: it comes with the Debian package " << package
              << " (scripts/setup.sh installs it)");
}

// Every file of `from` through `tool ARGS in out` into `to`, same names.
void transcode(const DicomWriteResult& from, const std::string& to, const std::string& tool,
               const std::string& args) {
  fs::create_directories(to);
  for (const std::string& f : from.files) {
    const std::string out = (fs::path(to) / fs::path(f).filename()).string();
    const std::string cmd = tool + " " + args + " '" + f + "' '" + out + "' >/dev/null 2>&1";
    INFO(cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
}

std::string syntax_of(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string p = e.path().string();
    return DicomParsed(p, ich::test::file_bytes(p)).transfer_syntax();
  }
  return "";
}

struct Syntax {
  const char* label;
  const char* tool;
  const char* package;
  const char* args;
  const char* uid;
};

const Syntax kSyntaxes[] = {
    {"implicit VR little endian", "dcmconv", "dcmtk", "+ti", "1.2.840.10008.1.2"},
    {"explicit VR little endian", "dcmconv", "dcmtk", "+te", "1.2.840.10008.1.2.1"},
    {"explicit VR big endian", "dcmconv", "dcmtk", "+tb", "1.2.840.10008.1.2.2"},
    {"deflated explicit VR little endian", "dcmconv", "dcmtk", "+td", "1.2.840.10008.1.2.1.99"},
    {"RLE lossless", "dcmcrle", "dcmtk", "", "1.2.840.10008.1.2.5"},
    {"JPEG lossless, first-order prediction", "dcmcjpeg", "dcmtk", "+e1", "1.2.840.10008.1.2.4.70"},
    {"JPEG lossless, process 14", "dcmcjpeg", "dcmtk", "+el", "1.2.840.10008.1.2.4.57"},
    {"JPEG-LS lossless", "dcmcjpls", "dcmtk", "+el", "1.2.840.10008.1.2.4.80"},
    {"JPEG 2000 lossless (GDCM's encoder)", "gdcmconv", "libgdcm-tools", "--j2k",
     "1.2.840.10008.1.2.4.90"},
};

}  // namespace

TEST_CASE("dicom: series transcoded by DCMTK (and gdcmconv for JPEG 2000) decode to the same HU",
          "[data]") {
  TempDir dir("dicom-transcode");
  const Volume v = ich::test::hu_volume(32, 28, 4);
  const DicomWriteResult w = write_dicom_series(dir / "orig", v, ich::test::write_options());
  const DicomVolume original = ich::test::read_folder(dir / "orig");
  REQUIRE(original.volume.values == v.values);
  for (const Syntax& s : kSyntaxes) {
    SECTION(s.label) {
      require_tool(s.tool, s.package);
      const std::string out = dir / "t";
      transcode(w, out, s.tool, s.args);
      REQUIRE(syntax_of(out) == s.uid);
      const DicomVolume r = ich::test::read_folder(out);
      REQUIRE(r.volume.nx == v.nx);
      REQUIRE(r.volume.nz == v.nz);
      int64_t differ = 0;
      for (size_t n = 0; n < v.values.size(); ++n) differ += r.volume.values[n] != v.values[n];
      CHECK(differ == 0);
      for (int row = 0; row < 3; ++row)
        for (int c = 0; c < 4; ++c)
          CHECK(r.stack.lps.m[row][c] == Approx(original.stack.lps.m[row][c]).margin(1e-9));
    }
  }
}

TEST_CASE("dicom: a transcoded file cut short, and GE's private syntax, are refused by name",
          "[data]") {
  TempDir dir("dicom-transcode-bad");
  const Volume v = ich::test::hu_volume(32, 28, 3);
  const DicomWriteResult w = write_dicom_series(dir / "orig", v, ich::test::write_options());
  require_tool("dcmcjpls", "dcmtk");
  SECTION("JPEG-LS, the last fragment cut") {
    transcode(w, dir / "t", "dcmcjpls", "");
    const std::string victim = dir / ("t/" + fs::path(w.files[1]).filename().string());
    std::vector<uint8_t> bytes = ich::test::file_bytes(victim);
    for (size_t cut : {size_t(4), size_t(20)}) {
      std::vector<uint8_t> b(bytes.begin(), bytes.end() - long(cut));
      ich::test::write_bytes(victim, b);
      REQUIRE_THROWS_WITH(scan_dicom_folder(dir / "t"),
                          Contains(victim + " is truncated") && Contains("pixel data"));
    }
  }
  SECTION("GE private implicit VR big endian (dcmconv +tg)") {
    require_tool("dcmconv", "dcmtk");
    transcode(w, dir / "t", "dcmconv", "+tg");
    REQUIRE(syntax_of(dir / "t") == "1.2.840.113619.5.2");
    REQUIRE_THROWS_WITH(ich::test::read_folder(dir / "t"),
                        Contains("uses transfer syntax 1.2.840.113619.5.2 (") &&
                            Contains("which this reader cannot decode"));
  }
}

TEST_CASE("dicom: damaged compressed streams give one error naming the file", "[data]") {
  TempDir dir("dicom-transcode-damaged");
  const Volume v = ich::test::hu_volume(32, 28, 2);
  const DicomWriteResult w = write_dicom_series(dir / "orig", v, ich::test::write_options());
  const std::string name = fs::path(w.files[0]).filename().string();
  // The first fragment of the pixel data, where it lies in the file (native files only).
  auto damage = [&](const std::string& path, int64_t at, std::vector<uint8_t> with) {
    std::vector<uint8_t> bytes = ich::test::file_bytes(path);
    const DicomParsed p(path, bytes);
    REQUIRE(p.pixel_fragments().size() >= 1);
    const int64_t offset = p.pixel_fragments()[0].offset + at;
    std::copy(with.begin(), with.end(), bytes.begin() + offset);
    ich::test::write_bytes(path, bytes);
  };
  SECTION("RLE: a segment offset past the fragment") {
    require_tool("dcmcrle", "dcmtk");
    transcode(w, dir / "t", "dcmcrle", "");
    damage(dir / ("t/" + name), 8, {0xFF, 0xFF, 0xFF, 0x7F});
    REQUIRE_THROWS_WITH(
        ich::test::read_folder(dir / "t"),
        Contains(dir / ("t/" + name)) && Contains("RLE segment 0 runs from byte 64 to 2147483647"));
  }
  SECTION("RLE: a segment that ends before its image") {
    require_tool("dcmcrle", "dcmtk");
    transcode(w, dir / "t", "dcmcrle", "");
    damage(dir / ("t/" + name), 0, {2, 0, 0, 0, 64, 0, 0, 0, 66, 0, 0, 0});  // a 2-byte segment 0
    REQUIRE_THROWS_WITH(ich::test::read_folder(dir / "t"),
                        Contains("a literal run of RLE segment 0 overruns the segment"));
  }
  SECTION("JPEG lossless: no JPEG stream in the fragment") {
    require_tool("dcmcjpeg", "dcmtk");
    transcode(w, dir / "t", "dcmcjpeg", "+e1");
    damage(dir / ("t/" + name), 0, {0, 0, 0, 0});
    REQUIRE_THROWS_WITH(ich::test::read_folder(dir / "t"),
                        Contains(dir / ("t/" + name)) &&
                            Contains("its pixel data do not start with a JPEG stream"));
  }
  SECTION("JPEG lossless with a JFIF header of an unknown revision decodes all the same") {
    // IJG warns about the revision and GDCM asserted on that warning (found by fuzz_dicom);
    // application segments are left out of what the codec gets.
    require_tool("dcmcjpeg", "dcmtk");
    transcode(w, dir / "t", "dcmcjpeg", "+e1");
    const std::vector<uint8_t> app0 = {0xFF, 0xE0, 0x00, 0x10, 'J',  'F',  'I',  'F',  0x00,
                                       0xEA, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00};
    for (const auto& e : fs::directory_iterator(dir / "t")) {
      const std::string path = e.path().string();
      std::vector<uint8_t> bytes = ich::test::file_bytes(path);
      const DicomParsed p(path, bytes);
      const int64_t at = p.pixel_fragments()[0].offset;
      const uint32_t length = uint32_t(p.pixel_fragments()[0].length + app0.size());
      for (int b = 0; b < 4; ++b) bytes[size_t(at - 4 + b)] = uint8_t(length >> (8 * b));
      bytes.insert(bytes.begin() + at + 2, app0.begin(), app0.end());
      ich::test::write_bytes(path, bytes);
    }
    CHECK(ich::test::read_folder(dir / "t").volume.values == v.values);
  }
  SECTION("JPEG-LS: a stream of another size than the header says") {
    require_tool("dcmcjpls", "dcmtk");
    transcode(w, dir / "t", "dcmcjpls", "");
    for (const auto& e : fs::directory_iterator(dir / "t"))
      ich::test::edit_dicom(e.path().string(), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
        ich::test::set_us(d, 0x0028, 0x0011, 30);
      });
    REQUIRE_THROWS_WITH(ich::test::read_folder(dir / "t"),
                        Contains("its compressed stream is 32x28 but the header says 30x28"));
  }
  SECTION("JPEG lossless: the scan cut by an end-of-image marker") {
    require_tool("dcmcjpeg", "dcmtk");
    transcode(w, dir / "t", "dcmcjpeg", "+e1");
    const std::string path = dir / ("t/" + name);
    const DicomParsed p(path, ich::test::file_bytes(path));
    damage(path, p.pixel_fragments()[0].length / 2, {0xFF, 0xD9});
    REQUIRE_THROWS_WITH(ich::test::read_folder(dir / "t"),
                        Contains(path) && Contains("cannot be decoded"));
  }
}
