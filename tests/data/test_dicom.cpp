// DICOM series: written by data/dicom_write.h, read back by data/dicom.h. The round trip
// (HU voxel for voxel, the geometry), the order (never by name or InstanceNumber), the
// geometry checks of a series with their numbers, and every bad input, each with the words
// of its message.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/dicom.h"
#include "data/dicom_codestream.h"
#include "data/dicom_parse.h"
#include "data/dicom_rle.h"
#include "data/dicom_write.h"
#include "data/geometry.h"
#include "data/nonfinite.h"
#include "data_test_util.h"
#include "dicom_test_util.h"

using namespace ich::data;
using Catch::Matchers::Contains;
using ich::test::read_folder;
using ich::test::TempDir;
namespace fs = std::filesystem;

namespace {

void require_same_hu(const Volume& a, const Volume& b) {
  REQUIRE(a.nx == b.nx);
  REQUIRE(a.ny == b.ny);
  REQUIRE(a.nz == b.nz);
  int64_t differ = 0;
  for (size_t n = 0; n < a.values.size(); ++n) differ += a.values[n] != b.values[n];
  REQUIRE(differ == 0);
}

// The file of slice k of a written series, by its position (not by name).
std::string file_of_slice(const DicomWriteResult& w, int k) {
  return w.files[size_t(k)];
}

void move_position(const std::string& path, double x, double y, double z) {
  ich::test::edit_dicom(path, [&](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
    ich::test::set_text(d, 0x0020, 0x0032, gdcm::VR::DS, ich::test::ds3(x, y, z));
  });
}

}  // namespace

TEST_CASE("dicom: writer -> reader round trip gives the same HU and the written geometry",
          "[data]") {
  TempDir dir("dicom-rt");
  const Volume v = ich::test::hu_volume();
  const DicomWriteOptions o = ich::test::write_options();
  const DicomWriteResult w = write_dicom_series(dir / "s", v, o);
  REQUIRE(w.files.size() == 7);

  const DicomFolder folder = scan_dicom_folder(dir.str());
  REQUIRE(folder.series.size() == 1);
  REQUIRE(folder.ignored.empty());
  const DicomSeries& s = select_dicom_series(folder, "");
  CHECK(s.uid == w.series_uid);
  CHECK(s.modality == "CT");
  CHECK(s.description == "synthetic head CT");
  CHECK(s.problem.empty());

  const DicomVolume r = read_dicom_series(s);
  require_same_hu(r.volume, v);
  CHECK(r.volume.datatype == kNiftiInt16);
  CHECK(r.nonfinite == 0);
  CHECK(r.files == w.files);  // slice k came from the file written for slice k
  CHECK(r.stack.notes.empty());
  CHECK(r.stack.max_position_error_mm < 1e-9);
  for (int i = 0; i < 3; ++i) CHECK(r.volume.spacing[i] == Approx(v.spacing[i]).epsilon(1e-12));
  // LPS affine: axial, x along columns, y along rows, z along slices, from the origin.
  const Affine& a = r.stack.lps;
  const double expected[3][4] = {{0.7, 0, 0, -10.5}, {0, 0.55, 0, 20.25}, {0, 0, 2.5, -33}};
  for (int row = 0; row < 3; ++row)
    for (int c = 0; c < 4; ++c) CHECK(a.m[row][c] == Approx(expected[row][c]).margin(1e-12));
  CHECK(affine_is_orthogonal(a));
  CHECK(affine_determinant(a) > 0);
  // RAS as nibabel/ITK: x and y negated.
  const Affine ras = lps_to_ras(a);
  const std::array<double, 3> p = ras.apply(2, 3, 4);
  CHECK(p[0] == Approx(-(-10.5 + 2 * 0.7)));
  CHECK(p[1] == Approx(-(20.25 + 3 * 0.55)));
  CHECK(p[2] == Approx(-33 + 4 * 2.5));
  CHECK(dicom_orientation_name(r.stack.normal) == "axial");

  const std::string line = describe_dicom_series(s);
  CHECK_THAT(line, Contains(w.series_uid) && Contains("7 files") && Contains("24x20x7") &&
                       Contains("0.7x0.55x2.5 mm") && Contains("axial"));
}

TEST_CASE("dicom: the writer shuffles names, lists slices top first, and is deterministic",
          "[data]") {
  TempDir dir("dicom-det");
  const Volume v = ich::test::hu_volume(8, 6, 9);
  const DicomWriteResult a = write_dicom_series(dir / "a", v, ich::test::write_options(3));
  const DicomWriteResult b = write_dicom_series(dir / "b", v, ich::test::write_options(3));
  const DicomWriteResult c = write_dicom_series(dir / "c", v, ich::test::write_options(4));
  std::vector<std::string> names;
  for (int k = 0; k < v.nz; ++k) {
    CHECK(ich::test::file_bytes(a.files[size_t(k)]) == ich::test::file_bytes(b.files[size_t(k)]));
    CHECK(fs::path(a.files[size_t(k)]).filename() == fs::path(b.files[size_t(k)]).filename());
    names.push_back(fs::path(a.files[size_t(k)]).filename().string());
  }
  CHECK(a.series_uid == b.series_uid);
  CHECK(a.series_uid != c.series_uid);
  CHECK(a.study_uid != c.study_uid);
  CHECK_FALSE(std::is_sorted(names.begin(), names.end()));  // name order is not slice order
  // InstanceNumber 1 is the top (last) slice.
  const DicomFolder f = scan_dicom_folder(dir / "a");
  for (const DicomSliceHeader& h : f.series[0].slices) {
    const auto it = std::find(a.files.begin(), a.files.end(), h.path);
    REQUIRE(it != a.files.end());
    CHECK(h.instance_number == v.nz - (it - a.files.begin()));
    CHECK(h.rescale_intercept == -1024);
    CHECK(h.rescale_slope == 1);
    CHECK(h.pixel_representation == 1);
    CHECK(h.bits_stored == 16);
  }
  // A value int16 cannot hold with the intercept is refused, not clipped.
  Volume bad = v;
  bad.values[5] = 31744;
  REQUIRE_THROWS_WITH(write_dicom_series(dir / "d", bad, ich::test::write_options()),
                      Contains("31744") && Contains("not an integer in [-33792, 31743]"));
  bad.values[5] = 0.5f;
  REQUIRE_THROWS_WITH(write_dicom_series(dir / "d", bad, ich::test::write_options()),
                      Contains("0.5 HU"));
}

TEST_CASE("dicom: slice order does not depend on file names, folders or InstanceNumber", "[data]") {
  TempDir dir("dicom-order");
  const Volume v = ich::test::hu_volume(10, 9, 6);
  const DicomWriteResult w = write_dicom_series(dir / "w", v, ich::test::write_options());
  // Slice k renamed so that name order is slice order reversed, spread over nested folders,
  // and InstanceNumber made ascending with name order.
  fs::create_directories(dir / "r/x/y");
  for (int k = 0; k < v.nz; ++k) {
    const std::string to =
        (k % 2 ? dir / "r/x/y/" : dir / "r/") + "IM" + std::to_string(100 - k) + ".dcm";
    fs::rename(w.files[size_t(k)], to);
    ich::test::edit_dicom(to, [&](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0020, 0x0013, gdcm::VR::IS, std::to_string(v.nz - k));
    });
  }
  const DicomVolume r = read_folder(dir / "r");
  require_same_hu(r.volume, v);
}

TEST_CASE("dicom: a coronal series is ordered along its normal, not along z", "[data]") {
  TempDir dir("dicom-coronal");
  const Volume v = ich::test::hu_volume(12, 10, 5);
  const DicomWriteResult w = write_dicom_series(dir.str(), v, ich::test::write_options());
  // Coronal: rows run to the patient's feet (-z), columns to the left; the normal
  // row x column = (1,0,0) x (0,0,-1) = (0,1,0): slices step posterior.
  for (int k = 0; k < v.nz; ++k) {
    ich::test::edit_dicom(w.files[size_t(k)], [&](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0020, 0x0037, gdcm::VR::DS, "1\\0\\0\\0\\0\\-1");
      ich::test::set_text(d, 0x0020, 0x0032, gdcm::VR::DS, ich::test::ds3(-5, 40 + 3.0 * k, 60));
    });
  }
  const DicomVolume r = read_folder(dir.str());
  require_same_hu(r.volume, v);
  CHECK(dicom_orientation_name(r.stack.normal) == "coronal");
  const std::array<double, 3> p = r.stack.lps.apply(1, 2, 3);
  CHECK(p[0] == Approx(-5 + 1 * 0.7));
  CHECK(p[1] == Approx(40 + 3 * 3.0));
  CHECK(p[2] == Approx(60 - 2 * 0.55));
  CHECK(r.volume.spacing[2] == Approx(3.0));
  CHECK(affine_determinant(r.stack.lps) > 0);
}

TEST_CASE("dicom: a missing slice is named with its gap, and allowed on request", "[data]") {
  TempDir dir("dicom-missing");
  const Volume v = ich::test::hu_volume(8, 8, 8);
  const DicomWriteResult w = write_dicom_series(dir.str(), v, ich::test::write_options());
  fs::remove(file_of_slice(w, 3));
  REQUIRE_THROWS_WITH(read_folder(dir.str()),
                      Contains("missing slices") && Contains("1 gap") && Contains("2.5 mm") &&
                          Contains("about 1 slice missing") && Contains("5 mm between") &&
                          Contains(file_of_slice(w, 2)) && Contains(file_of_slice(w, 4)));
  DicomReadOptions allow;
  allow.allow_missing_slices = true;
  const DicomVolume r = read_folder(dir.str(), allow);
  REQUIRE(r.volume.nz == 7);
  CHECK(r.volume.spacing[2] == Approx(7 * 2.5 / 6));  // the mean step
  CHECK(r.stack.max_position_error_mm > 0.1);
  REQUIRE(r.stack.notes.size() == 2);
  CHECK_THAT(r.stack.notes[0], Contains("allowed"));
  for (int k = 0; k < 7; ++k) {
    const int source = k < 3 ? k : k + 1;
    CHECK(std::equal(r.volume.slice(k), r.volume.slice(k) + 64, v.slice(source)));
  }
}

TEST_CASE("dicom: irregular spacing is named with its numbers, and allowed on request", "[data]") {
  TempDir dir("dicom-irregular");
  const Volume v = ich::test::hu_volume(8, 8, 6);
  const ich::data::DicomWriteOptions o = ich::test::write_options();
  const DicomWriteResult w = write_dicom_series(dir.str(), v, o);
  move_position(file_of_slice(w, 2), o.origin[0], o.origin[1], o.origin[2] + 2 * 2.5 + 0.8);
  REQUIRE_THROWS_WITH(read_folder(dir.str()), Contains("irregular spacing") &&
                                                  Contains("2 of 5 distances") &&
                                                  Contains("from 1.7 mm to 3.3 mm"));
  DicomReadOptions allow;
  allow.allow_irregular_spacing = true;
  const DicomVolume r = read_folder(dir.str(), allow);
  require_same_hu(r.volume, v);
  CHECK(r.stack.max_position_error_mm == Approx(0.8));
}

TEST_CASE("dicom: gantry tilt is detected with its angle, and allowed with a sheared affine",
          "[data]") {
  TempDir dir("dicom-tilt");
  const Volume v = ich::test::hu_volume(8, 8, 5);
  const ich::data::DicomWriteOptions o = ich::test::write_options();
  const DicomWriteResult w = write_dicom_series(dir.str(), v, o);
  const double t = std::tan(15.0 * M_PI / 180.0);
  for (int k = 0; k < v.nz; ++k) {
    move_position(file_of_slice(w, k), o.origin[0], o.origin[1] + k * 2.5 * t,
                  o.origin[2] + k * 2.5);
    ich::test::edit_dicom(file_of_slice(w, k), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0018, 0x1120, gdcm::VR::DS, "15");
    });
  }
  REQUIRE_THROWS_WITH(read_folder(dir.str()),
                      Contains("gantry tilt") && Contains("15 degrees") &&
                          Contains("GantryDetectorTilt (0018,1120) says 15"));
  DicomReadOptions allow;
  allow.allow_gantry_tilt = true;
  const DicomVolume r = read_folder(dir.str(), allow);
  require_same_hu(r.volume, v);
  CHECK_FALSE(affine_is_orthogonal(r.stack.lps));
  CHECK(r.stack.max_position_error_mm < 1e-6);  // every slice exactly where the scanner put it
  const std::array<double, 3> p = r.stack.lps.apply(0, 0, 4);
  CHECK(p[1] == Approx(o.origin[1] + 4 * 2.5 * t));
  CHECK(p[2] == Approx(o.origin[2] + 4 * 2.5));
}

TEST_CASE("dicom: mixed sizes, orientations, pixel spacing and duplicate positions are refused",
          "[data]") {
  TempDir dir("dicom-mixed");
  SECTION("mixed sizes") {
    // Two writes with one seed: one series UID, a 16x16 part and a 12x12 part above it.
    ich::data::DicomWriteOptions o = ich::test::write_options();
    write_dicom_series(dir / "a", ich::test::hu_volume(16, 16, 4), o);
    o.origin[2] += 100;
    write_dicom_series(dir / "b", ich::test::hu_volume(12, 12, 2), o);
    REQUIRE_THROWS_WITH(read_folder(dir.str()), Contains("mixed sizes") &&
                                                    Contains("4 are 16x16") &&
                                                    Contains("2 are 12x12") && Contains(dir / "b"));
  }
  SECTION("mixed orientations") {
    const DicomWriteResult w =
        write_dicom_series(dir.str(), ich::test::hu_volume(8, 8, 4), ich::test::write_options());
    ich::test::edit_dicom(file_of_slice(w, 1), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0020, 0x0037, gdcm::VR::DS, "1\\0\\0\\0\\0\\-1");
      ich::test::set_text(d, 0x0008, 0x0008, gdcm::VR::CS, "ORIGINAL\\PRIMARY\\LOCALIZER");
    });
    REQUIRE_THROWS_WITH(read_folder(dir.str()),
                        Contains("mixed orientations") && Contains("3 are 1\\0\\0\\0\\1\\0") &&
                            Contains("1 is 1\\0\\0\\0\\0\\-1") && Contains("localizer"));
  }
  SECTION("mixed pixel spacing") {
    const DicomWriteResult w =
        write_dicom_series(dir.str(), ich::test::hu_volume(8, 8, 4), ich::test::write_options());
    ich::test::edit_dicom(file_of_slice(w, 2), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0028, 0x0030, gdcm::VR::DS, "0.6\\0.6");
    });
    REQUIRE_THROWS_WITH(read_folder(dir.str()), Contains("mixed pixel spacing") &&
                                                    Contains("1 is 0.6\\0.6") &&
                                                    Contains(file_of_slice(w, 2)));
  }
  SECTION("a slice twice") {
    const DicomWriteResult w =
        write_dicom_series(dir.str(), ich::test::hu_volume(8, 8, 4), ich::test::write_options());
    fs::copy_file(file_of_slice(w, 2), dir / "copy");
    REQUIRE_THROWS_WITH(read_folder(dir.str()),
                        Contains("1 pair of slices at one position") && Contains("one file twice"));
    // Another acquisition at the same place: a different SOPInstanceUID.
    ich::test::edit_dicom(dir / "copy", [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0008, 0x0018, gdcm::VR::UI, "2.25.99");
    });
    REQUIRE_THROWS_WITH(read_folder(dir.str()), Contains("two acquisitions"));
  }
}

TEST_CASE("dicom: a folder without DICOM, non-DICOM and damaged files among the slices", "[data]") {
  TempDir dir("dicom-files");
  SECTION("no DICOM at all") {
    ich::test::write_text(dir / "README", "# the scans of patient 7\n");
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()),
                        Contains(dir.str() + " holds no DICOM file") && Contains("README"));
    fs::create_directories(dir / "empty");
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir / "empty"), Contains("holds no DICOM file (0 files"));
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir / "nothing"), Contains("is not a folder"));
  }
  const Volume v = ich::test::hu_volume(8, 8, 4);
  const DicomWriteResult w = write_dicom_series(dir / "s", v, ich::test::write_options());
  SECTION("a README and a thumbnail are ignored, and listed") {
    ich::test::write_text(dir / "s/README.txt", "exported by the PACS\n");
    ich::test::write_bytes(dir / "s/thumbs.db", std::vector<uint8_t>(300, 0xAB));
    const DicomFolder f = scan_dicom_folder(dir.str());
    REQUIRE(f.ignored.size() == 2);
    CHECK(f.ignored[0].path == dir / "s/README.txt");
    CHECK_THAT(f.ignored[0].reason, Contains("not DICOM") && Contains("exported"));
    require_same_hu(read_dicom_series(select_dicom_series(f, "")).volume, v);
  }
  SECTION("a file that claims to be DICOM but is not is an error naming it") {
    ich::test::write_text(dir / "s/IM0009.dcm", "not really\n");
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()), Contains(dir / "s/IM0009.dcm") &&
                                                          Contains("is not a DICOM file") &&
                                                          Contains("whatever its name says"));
  }
  SECTION("a slice cut in its pixel data") {
    std::vector<uint8_t> bytes = ich::test::file_bytes(file_of_slice(w, 1));
    bytes.resize(bytes.size() - 10);
    ich::test::write_bytes(file_of_slice(w, 1), bytes);
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()),
                        Contains(file_of_slice(w, 1) + " is truncated") &&
                            Contains("(7FE0,0010)") && Contains("announces 128 bytes, 118 remain"));
  }
  SECTION("a slice cut in its header") {
    const std::vector<uint8_t> bytes = ich::test::file_bytes(file_of_slice(w, 2));
    for (size_t cut : {size_t(140), size_t(300), size_t(500)}) {
      ich::test::write_bytes(file_of_slice(w, 2),
                             std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(cut)));
      REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()),
                          Contains(file_of_slice(w, 2)) && Contains("truncated"));
    }
  }
  SECTION("a DICOM object without a SeriesInstanceUID") {
    ich::test::edit_dicom(file_of_slice(w, 0), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      d.Remove(gdcm::Tag(0x0020, 0x000E));
    });
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()),
                        Contains(file_of_slice(w, 0)) && Contains("no SeriesInstanceUID"));
  }
  SECTION("malformed values of attributes the reader needs") {
    ich::test::edit_dicom(file_of_slice(w, 0), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0020, 0x0032, gdcm::VR::DS, "1\\two\\3");
    });
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()),
                        Contains(file_of_slice(w, 0)) &&
                            Contains("ImagePositionPatient (0020,0032) is not a list of numbers"));
    ich::test::edit_dicom(file_of_slice(w, 0), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0020, 0x0032, gdcm::VR::DS, "1\\2");
    });
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()), Contains("has 2 values, 3 expected"));
    ich::test::edit_dicom(file_of_slice(w, 0), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0020, 0x0032, gdcm::VR::DS, "1\\2\\3");
      ich::test::set_us(d, 0x0028, 0x0010, 65535);
      ich::test::set_us(d, 0x0028, 0x0011, 65535);
    });
    REQUIRE_THROWS_WITH(scan_dicom_folder(dir.str()),
                        Contains("a slice of 65535x65535 pixels; at most 16777216 (4096x4096)"));
  }
}

TEST_CASE(
    "dicom: non-CT, multi-frame objects and unsupported transfer syntaxes are refused by name",
    "[data]") {
  TempDir dir("dicom-kinds");
  const Volume v = ich::test::hu_volume(8, 8, 3);
  const DicomWriteResult w = write_dicom_series(dir.str(), v, ich::test::write_options());
  SECTION("an MR series") {
    for (const std::string& f : w.files)
      ich::test::edit_dicom(f, [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
        ich::test::set_text(d, 0x0008, 0x0060, gdcm::VR::CS, "MR");
        ich::test::set_text(d, 0x0008, 0x0016, gdcm::VR::UI, "1.2.840.10008.5.1.4.1.1.4");
      });
    REQUIRE_THROWS_WITH(read_folder(dir.str()),
                        Contains("is MR (1.2.840.10008.5.1.4.1.1.4 (MR Image Storage)), not CT") &&
                            Contains("and 2 more of its 3 files"));
  }
  SECTION("a multi-frame object") {
    ich::test::edit_dicom(file_of_slice(w, 1), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0028, 0x0008, gdcm::VR::IS, "2");
      ich::test::set_bytes(d, 0x7FE0, 0x0010, gdcm::VR::OW, std::vector<uint8_t>(8 * 8 * 2 * 2, 0));
    });
    REQUIRE_THROWS_WITH(read_folder(dir.str()), Contains(file_of_slice(w, 1)) &&
                                                    Contains("is a multi-frame object (2 frames"));
  }
  SECTION("an Enhanced CT object") {
    ich::test::edit_dicom(file_of_slice(w, 0), [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0008, 0x0016, gdcm::VR::UI, "1.2.840.10008.5.1.4.1.1.2.1");
    });
    REQUIRE_THROWS_WITH(read_folder(dir.str()), Contains("Enhanced CT Image Storage") &&
                                                    Contains("not a CT Image Storage slice"));
  }
  SECTION("a transfer syntax the reader cannot decode") {
    ich::test::edit_dicom(file_of_slice(w, 2), [](gdcm::DataSet&, gdcm::FileMetaInformation& m) {
      ich::test::set_text(m, 0x0002, 0x0010, gdcm::VR::UI, "1.2.840.10008.1.2.4.100");
    });
    const DicomParsed p(file_of_slice(w, 2), ich::test::file_bytes(file_of_slice(w, 2)));
    REQUIRE(p.transfer_syntax() == "1.2.840.10008.1.2.4.100");
    REQUIRE_THROWS_WITH(read_folder(dir.str()),
                        Contains(file_of_slice(w, 2)) &&
                            Contains("uses transfer syntax 1.2.840.10008.1.2.4.100 (MPEG2") &&
                            Contains("cannot decode"));
  }
  SECTION("a transfer syntax no dictionary knows") {
    ich::test::edit_dicom(file_of_slice(w, 2), [](gdcm::DataSet&, gdcm::FileMetaInformation& m) {
      ich::test::set_text(m, 0x0002, 0x0010, gdcm::VR::UI, "1.2.3.4.5.6");
    });
    REQUIRE_THROWS_WITH(read_folder(dir.str()),
                        Contains("1.2.3.4.5.6 (not in the DICOM dictionary this reader knows)"));
  }
}

TEST_CASE("dicom: several series: listed, chosen by UID, or the only CT one", "[data]") {
  TempDir dir("dicom-select");
  const Volume v = ich::test::hu_volume(8, 8, 3);
  const DicomWriteResult a = write_dicom_series(dir / "a", v, ich::test::write_options(1));
  const DicomWriteResult b = write_dicom_series(dir / "b", v, ich::test::write_options(2));
  DicomFolder f = scan_dicom_folder(dir.str());
  REQUIRE(f.series.size() == 2);
  REQUIRE_THROWS_WITH(select_dicom_series(f, ""),
                      Contains("holds 2 series") &&
                          Contains("choose one by its SeriesInstanceUID") &&
                          Contains(a.series_uid) && Contains(b.series_uid));
  CHECK(select_dicom_series(f, b.series_uid).uid == b.series_uid);
  REQUIRE_THROWS_WITH(select_dicom_series(f, "2.25.1"), Contains("has no series 2.25.1"));
  // With b a dose report (not CT), a is the only CT series.
  for (const std::string& file : b.files)
    ich::test::edit_dicom(file, [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
      ich::test::set_text(d, 0x0008, 0x0060, gdcm::VR::CS, "SR");
    });
  f = scan_dicom_folder(dir.str());
  CHECK(select_dicom_series(f, "").uid == a.series_uid);
  const DicomSeries& sr = f.series[0].uid == b.series_uid ? f.series[0] : f.series[1];
  CHECK_THAT(describe_dicom_series(sr), Contains("not readable") && Contains("is SR"));
}

TEST_CASE(
    "dicom: pixel encodings: 12 bits stored with other bits set, high bits, unsigned, float with "
    "NaN",
    "[data]") {
  TempDir dir("dicom-pixels");
  const Volume v = ich::test::hu_volume(6, 5, 2);
  const DicomWriteResult w = write_dicom_series(dir.str(), v, ich::test::write_options());
  const int n = v.nx * v.ny;
  SECTION("12 bits stored, signed, garbage above bit 11") {
    for (int k = 0; k < v.nz; ++k)
      ich::test::edit_dicom(file_of_slice(w, k), [&](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
        std::vector<uint8_t> px(size_t(n) * 2);
        for (int i = 0; i < n; ++i) {
          const int stored = (i * 97 + k * 13) % 4096 - 2048;                // fits 12 bits, signed
          const uint16_t u = uint16_t((stored & 0x0FFF) | ((i % 3) << 13));  // junk bits
          px[size_t(2 * i)] = uint8_t(u & 0xFF);
          px[size_t(2 * i + 1)] = uint8_t(u >> 8);
        }
        ich::test::set_bytes(d, 0x7FE0, 0x0010, gdcm::VR::OW, px);
        ich::test::set_us(d, 0x0028, 0x0101, 12);
        ich::test::set_us(d, 0x0028, 0x0102, 11);
        ich::test::set_text(d, 0x0028, 0x1053, gdcm::VR::DS, "0.5");
      });
    const DicomVolume r = read_folder(dir.str());
    for (int k = 0; k < v.nz; ++k)
      for (int i = 0; i < n; ++i)
        REQUIRE(r.volume.slice(k)[i] == float(((i * 97 + k * 13) % 4096 - 2048) * 0.5 - 1024));
  }
  SECTION("10 bits stored at the top of the word, unsigned") {
    for (int k = 0; k < v.nz; ++k)
      ich::test::edit_dicom(file_of_slice(w, k), [&](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
        std::vector<uint8_t> px(size_t(n) * 2);
        for (int i = 0; i < n; ++i) {
          const uint16_t u = uint16_t(((i * 31 + k) % 1024) << 6 | 0x2A);
          px[size_t(2 * i)] = uint8_t(u & 0xFF);
          px[size_t(2 * i + 1)] = uint8_t(u >> 8);
        }
        ich::test::set_bytes(d, 0x7FE0, 0x0010, gdcm::VR::OW, px);
        ich::test::set_us(d, 0x0028, 0x0101, 10);
        ich::test::set_us(d, 0x0028, 0x0102, 15);
        ich::test::set_us(d, 0x0028, 0x0103, 0);
      });
    const DicomVolume r = read_folder(dir.str());
    CHECK(r.volume.datatype == kNiftiUint16);
    for (int k = 0; k < v.nz; ++k)
      for (int i = 0; i < n; ++i)
        REQUIRE(r.volume.slice(k)[i] == float((i * 31 + k) % 1024 - 1024));
  }
  SECTION("float pixel data with NaN and infinities are counted, not changed") {
    for (int k = 0; k < v.nz; ++k)
      ich::test::edit_dicom(file_of_slice(w, k), [&](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
        std::vector<float> px(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) px[size_t(i)] = float(i) * 0.25f - 3;
        px[1] = NAN;
        if (k == 1) {
          px[2] = INFINITY;
          px[3] = -INFINITY;
        }
        d.Remove(gdcm::Tag(0x7FE0, 0x0010));
        std::vector<uint8_t> bytes(px.size() * 4);
        std::memcpy(bytes.data(), px.data(), bytes.size());
        ich::test::set_bytes(d, 0x7FE0, 0x0008, gdcm::VR::OF, bytes);
        ich::test::set_us(d, 0x0028, 0x0100, 32);
        ich::test::set_us(d, 0x0028, 0x0101, 32);
        ich::test::set_us(d, 0x0028, 0x0102, 31);
        d.Remove(gdcm::Tag(0x0028, 0x1052));
        d.Remove(gdcm::Tag(0x0028, 0x1053));
      });
    const DicomVolume r = read_folder(dir.str());
    CHECK(r.volume.datatype == kNiftiFloat32);
    CHECK(r.nonfinite == 4);
    REQUIRE(r.stack.notes.size() == 1);
    CHECK_THAT(r.stack.notes[0],
               Contains("2 of 2 slices have neither RescaleSlope nor RescaleIntercept"));
    CHECK(std::isnan(r.volume.slice(0)[1]));
    CHECK(std::isinf(r.volume.slice(1)[2]));
    CHECK(r.volume.slice(1)[4] == -2.0f);
    const FiniteStats s = finite_stats(r.volume.values.data(), r.volume.voxels());
    CHECK(s.nonfinite == 4);
    CHECK(s.finite == 2 * n - 4);
    CHECK(s.min == -3);
    CHECK(s.max == Approx((n - 1) * 0.25 - 3));
  }
}

TEST_CASE("dicom: one slice takes its spacing from SliceThickness and says so", "[data]") {
  TempDir dir("dicom-one");
  const Volume v = ich::test::hu_volume(8, 8, 1);
  write_dicom_series(dir.str(), v, ich::test::write_options());
  const DicomVolume r = read_folder(dir.str());
  require_same_hu(r.volume, v);
  CHECK(r.volume.spacing[2] == Approx(2.5));
  REQUIRE(r.stack.notes.size() == 1);
  CHECK_THAT(r.stack.notes[0], Contains("from SliceThickness"));
}

TEST_CASE("dicom: what claims to be DICOM", "[data]") {
  std::vector<uint8_t> head(132, 0);
  std::string why;
  CHECK_FALSE(looks_like_dicom("a/README", head.data(), head.size(), &why));
  std::memcpy(head.data() + 128, "DICM", 4);
  CHECK(looks_like_dicom("a/README", head.data(), head.size(), &why));
  const uint8_t bare[8] = {0x08, 0x00, 0x05, 0x00, 'C', 'S', 0x0A, 0x00};
  CHECK(looks_like_dicom("x", bare, 8, &why));
  const char* text = "hello world, this is a readme";
  CHECK_FALSE(
      looks_like_dicom("x", reinterpret_cast<const uint8_t*>(text), std::strlen(text), &why));
  CHECK_THAT(why, Contains("hello wo"));
  CHECK(looks_like_dicom("x/IMG.DCM", reinterpret_cast<const uint8_t*>(text), std::strlen(text),
                         &why));
  CHECK_FALSE(looks_like_dicom("x/empty", nullptr, 0, &why));
  CHECK(why == "empty");
}

TEST_CASE("dicom: RLE segments: literal and repeat runs, and every overrun refused", "[data]") {
  // A 2x3 image of 16-bit pixels: segment 0 = high bytes, segment 1 = low bytes.
  auto fragment = [](std::vector<uint8_t> seg0, std::vector<uint8_t> seg1) {
    std::vector<uint8_t> f(64, 0);
    auto put32 = [&](size_t at, uint32_t v) {
      for (int b = 0; b < 4; ++b) f[at + b] = uint8_t(v >> (8 * b));
    };
    put32(0, 2);
    put32(4, 64);
    put32(8, uint32_t(64 + seg0.size()));
    f.insert(f.end(), seg0.begin(), seg0.end());
    f.insert(f.end(), seg1.begin(), seg1.end());
    return f;
  };
  // high: 0x01 x3 (repeat), then 0x02 0x03 0x04 (literal); a -128 no-op in between.
  // low: literal 6 bytes.
  std::vector<uint8_t> f =
      fragment({0xFE, 0x01, 0x80, 0x02, 0x02, 0x03, 0x04}, {0x05, 10, 11, 12, 13, 14, 15});
  const std::vector<uint8_t> out = decode_dicom_rle("x", f.data(), int64_t(f.size()), 2, 3, 2);
  const std::vector<uint8_t> expected = {10, 1, 11, 1, 12, 1, 13, 2, 14, 3, 15, 4};
  CHECK(out == expected);
  f = fragment({0xFE, 0x01}, {0x05, 10, 11, 12, 13, 14, 15});
  REQUIRE_THROWS_WITH(decode_dicom_rle("x", f.data(), int64_t(f.size()), 2, 3, 2),
                      Contains("x: RLE segment 0 ends after 3 of 6 pixels"));
  f = fragment({0xF9, 0x01}, {0x05, 10, 11, 12, 13, 14, 15});  // 8 repeats for 6 pixels
  REQUIRE_THROWS_WITH(decode_dicom_rle("x", f.data(), int64_t(f.size()), 2, 3, 2),
                      Contains("a repeat run of RLE segment 0 overruns the image"));
  f = fragment({0xFB, 0x01}, {0x07, 10, 11, 12, 13, 14, 15, 16, 17});  // 8 literals for 6
  REQUIRE_THROWS_WITH(decode_dicom_rle("x", f.data(), int64_t(f.size()), 2, 3, 2),
                      Contains("a literal run of RLE segment 1 overruns the image"));
  REQUIRE_THROWS_WITH(decode_dicom_rle("x", f.data(), int64_t(f.size()), 2, 3, 1),
                      Contains("announces 2 segments; a greyscale image of 8-bit pixels has 1"));
  REQUIRE_THROWS_WITH(decode_dicom_rle("x", f.data(), 40, 2, 3, 2), Contains("fewer than the 64"));
}

TEST_CASE("dicom: compressed stream headers are read and checked before any codec", "[data]") {
  // SOI, APP0 (4 bytes), SOF3 lossless: 16 bits, 28 rows, 32 columns, 1 component, then SOS.
  std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC3, 0x00,
                               0x0B, 16,   0x00, 28,   0x00, 32,   1,    1,    0x11, 0x00, 0xFF,
                               0xFF, 0xDA, 0x00, 0x08, 1,    1,    0x00, 1,    0x00, 0x00};
  const CodestreamHeader h =
      read_codestream_header("x", jpeg.data(), int64_t(jpeg.size()), CodestreamKind::kJpeg);
  CHECK(h.width == 32);
  CHECK(h.height == 28);
  CHECK(h.components == 1);
  CHECK(h.precision == 16);
  check_codestream_matches("x", h, 28, 32, 16);
  REQUIRE_THROWS_WITH(check_codestream_matches("x", h, 28, 30, 16),
                      Contains("its compressed stream is 32x28 but the header says 30x28"));
  REQUIRE_THROWS_WITH(check_codestream_matches("x", h, 28, 32, 8),
                      Contains("16-bit samples, which do not fill BitsAllocated 8"));
  // A frame header followed by no marker (found by fuzz_dicom: GDCM asserted on it).
  std::vector<uint8_t> bad(jpeg.begin(), jpeg.begin() + 21);
  bad.insert(bad.end(), {0x12, 0x34, 0x56});
  REQUIRE_THROWS_WITH(
      read_codestream_header("x", bad.data(), int64_t(bad.size()), CodestreamKind::kJpeg),
      Contains("x: its JPEG stream has no marker at byte 21"));
  bad.assign(jpeg.begin(), jpeg.begin() + 21);  // ends after the frame header
  REQUIRE_THROWS_WITH(
      read_codestream_header("x", bad.data(), int64_t(bad.size()), CodestreamKind::kJpegLs),
      Contains("its JPEG-LS stream ends before its scan"));
  bad = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02};
  REQUIRE_THROWS_WITH(
      read_codestream_header("x", bad.data(), int64_t(bad.size()), CodestreamKind::kJpeg),
      Contains("no frame header before its scan"));
  bad = {0xFF, 0xD8, 0xFF, 0xE0, 0x01, 0x00};
  REQUIRE_THROWS_WITH(
      read_codestream_header("x", bad.data(), int64_t(bad.size()), CodestreamKind::kJpeg),
      Contains("a marker segment of its JPEG stream is cut off"));

  // JPEG 2000: SOC, SIZ of a 30x20 image at offset (2, 1), one signed 12-bit component.
  std::vector<uint8_t> j2k = {0xFF, 0x4F, 0xFF, 0x51, 0x00, 41, 0x00, 0x00};
  for (uint32_t v : {32u, 21u, 2u, 1u, 32u, 21u, 0u, 0u})
    for (int b = 3; b >= 0; --b) j2k.push_back(uint8_t(v >> (8 * b)));
  j2k.insert(j2k.end(), {0x00, 0x01, 0x80 | 11, 1, 1});
  CodestreamHeader k =
      read_codestream_header("x", j2k.data(), int64_t(j2k.size()), CodestreamKind::kJpeg2000);
  CHECK(k.width == 30);
  CHECK(k.height == 20);
  CHECK(k.precision == 12);
  CHECK(k.components == 1);
  // The same inside a JP2 file: signature box, then the codestream box.
  std::vector<uint8_t> jp2 = {0,    0,    0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A,
                              0x87, 0x0A, 0, 0,  0,   0,   'j', 'p', '2',  'c'};
  jp2.insert(jp2.end(), j2k.begin(), j2k.end());
  k = read_codestream_header("x", jp2.data(), int64_t(jp2.size()), CodestreamKind::kJpeg2000);
  CHECK(k.width == 30);
  // A marker segment whose length runs past the stream (found by fuzz_dicom: GDCM's own walk
  // of the codestream crashed on it), and a tile-part longer than the stream.
  std::vector<uint8_t> cut = j2k;
  cut.insert(cut.end(), {0xFF, 0x64, 0xFF, 0x2A, 0x00, 0x01});
  REQUIRE_THROWS_WITH(
      read_codestream_header("x", cut.data(), int64_t(cut.size()), CodestreamKind::kJpeg2000),
      Contains("its JPEG 2000 codestream has a marker segment cut off (byte 45)"));
  cut = j2k;
  cut.insert(cut.end(), {0xFF, 0x90, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01});
  REQUIRE_THROWS_WITH(
      read_codestream_header("x", cut.data(), int64_t(cut.size()), CodestreamKind::kJpeg2000),
      Contains("has a tile-part cut off"));
  j2k.resize(30);
  REQUIRE_THROWS_WITH(
      read_codestream_header("x", j2k.data(), int64_t(j2k.size()), CodestreamKind::kJpeg2000),
      Contains("the SIZ header of its JPEG 2000 codestream is cut off"));
}
