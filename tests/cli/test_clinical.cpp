// Clinical input at the command line (issue 14): DICOM series folders through info, prepare
// and predict, the predicted mask's affine against the geometry the test wrote, non-finite
// voxels reported (against nibabel when it is installed) and refused unless --nonfinite says
// otherwise, and every bad DICOM input as one line and a non-zero exit with nothing written.
#include <nifti2_io.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_util.h"
#include "data/data_test_util.h"
#include "data/dicom_test_util.h"
#include "data/image_io.h"
#include "data/nifti.h"
#include "data/nonfinite.h"
#include "data/window.h"

using namespace ich::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

void require_one_line_error(const Result& r, const std::string& expected) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.signal == 0);
  CHECK(line_count(r.err) == 1);
  CHECK_THAT(r.err, Contains(expected));
}

// Three patients of 48x48x(3..5), every one with hemorrhage, in the given format.
void synth(const std::string& out, const std::string& format) {
  run_ichseg_ok({"synth", "--out", out, "--patients", "3", "--size", "48", "--slices", "4",
                 "--slice-jitter", "1", "--healthy-fraction", "0", "--seed", "21", "--format",
                 format});
}

// A checkpoint trained for one epoch on DIR/prepared (enough for predict to run).
std::string tiny_checkpoint(const TempDir& dir) {
  run_ichseg_ok({"prepare", "--data", dir / "nifti", "--out", dir / "prepared"});
  run_ichseg_ok(tiny_train_args(dir, "run", 1));
  return dir / "run/checkpoints/best.safetensors";
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// The sform and qform nifti_clib reads from a file.
struct Transforms {
  int sform_code = 0, qform_code = 0;
  double sform[4][4], qform[4][4];
};
Transforms read_transforms(const std::string& path) {
  nifti_set_debug_level(0);
  nifti_image* nim = nifti_image_read(path.c_str(), 0);
  REQUIRE(nim != nullptr);
  Transforms t;
  t.sform_code = nim->sform_code;
  t.qform_code = nim->qform_code;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c)
      t.sform[r][c] = nim->sto_xyz.m[r][c], t.qform[r][c] = nim->qto_xyz.m[r][c];
  nifti_image_free(nim);
  return t;
}

std::string stdout_of(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, got);
  ::pclose(p);
  return out;
}

}  // namespace

TEST_CASE("cli: synth --format dicom -> info -> prepare gives the NIfTI phantom's slices",
          "[cli]") {
  TempDir dir("clinical-dicom");
  synth(dir / "nifti", "nifti");
  synth(dir / "dicom", "dicom");
  CHECK(fs::is_directory(dir / "dicom/ct_scans/001"));
  CHECK_FALSE(fs::exists(dir / "dicom/ct_scans/001.nii"));

  const Result one = run_ichseg_ok({"info", dir / "dicom/ct_scans/001"});
  CHECK_THAT(one.out, Contains("4 DICOM files in 1 series") ||
                          Contains("3 DICOM files in 1 series") ||
                          Contains("5 DICOM files in 1 series"));
  CHECK_THAT(one.out, Contains("48x48x") && Contains("axial") && Contains("HU min"));

  // --json: one object per series, each the figures of the NIfTI file of the same patient.
  const Result all = run_ichseg_ok({"info", "--json", dir / "dicom/ct_scans/001",
                                    dir / "dicom/ct_scans/002", dir / "dicom/ct_scans/003"});
  const std::vector<nlohmann::json> series = json_lines(all.out);
  REQUIRE(series.size() == 3);
  for (int p = 1; p <= 3; ++p) {
    const nlohmann::json& s = series[size_t(p - 1)];
    const std::string name = "00" + std::to_string(p);
    INFO(s.dump());
    const nlohmann::json n =
        json_lines(run_ichseg_ok({"info", "--json", dir / ("nifti/ct_scans/" + name + ".nii")}).out)
            .at(0);
    CHECK(s["format"] == "dicom");
    CHECK(s["modality"] == "CT");
    CHECK(s["orientation"] == "axial");
    CHECK(s["series_uid"].get<std::string>().rfind("2.25.", 0) == 0);
    CHECK(s["dims"] == n["dims"]);
    CHECK(s["files"] == n["dims"][2]);
    for (int i = 0; i < 3; ++i)
      CHECK(s["spacing"][i].get<double>() == Approx(n["spacing"][i].get<double>()));
    CHECK(s["nonfinite"] == 0);
    CHECK(s["min"] == n["min"]);
    CHECK(s["max"] == n["max"]);
    CHECK(s["mean"].get<double>() == Approx(n["mean"].get<double>()).epsilon(1e-9));
  }

  // prepare: byte-identical PNGs and manifest; prepare.json names each patient's series.
  run_ichseg_ok({"prepare", "--data", dir / "nifti", "--out", dir / "pn"});
  const Result pd = run_ichseg_ok({"prepare", "--data", dir / "dicom", "--out", dir / "pd"});
  CHECK_THAT(pd.out, Contains("3 patients"));
  CHECK(read_text(dir / "pn/manifest.csv") == read_text(dir / "pd/manifest.csv"));
  int compared = 0;
  for (const auto& e : fs::directory_iterator(dir / "pn/image")) {
    const std::string name = e.path().filename().string();
    CHECK(read_text(e.path().string()) == read_text(dir / ("pd/image/" + name)));
    CHECK(read_text(dir / ("pn/label/" + name)) == read_text(dir / ("pd/label/" + name)));
    ++compared;
  }
  CHECK(compared >= 9);
  const nlohmann::json record = nlohmann::json::parse(read_text(dir / "pd/prepare.json"));
  CHECK(record["nonfinite"] == "refuse");
  REQUIRE(record["patients"].size() == 3);
  for (int p = 0; p < 3; ++p) {
    CHECK(record["patients"][p]["format"] == "dicom");
    CHECK(record["patients"][p]["series_uid"] == series[size_t(p)]["series_uid"]);
  }
  CHECK(nlohmann::json::parse(read_text(dir / "pn/prepare.json"))["patients"][0]["format"] ==
        "nifti");

  // train on the raw CT-ICH folders: the DICOM one learns exactly as the NIfTI one (same
  // pixels, same seed), epoch for epoch (the log without its timing columns).
  auto loss_columns = [](const std::string& log) {
    std::istringstream in(log);
    std::string line, out;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string field;
      for (int c = 0; c < 6 && std::getline(fields, field, ','); ++c) out += field + ",";
      out += "\n";
    }
    return out;
  };
  for (const char* format : {"nifti", "dicom"}) {
    auto train = tiny_train_args(dir, std::string("run-") + format, 1);
    train[2] = dir / format;
    run_ichseg_ok(train);
  }
  const std::string nifti_log = loss_columns(read_text(dir / "run-nifti/log.csv"));
  CHECK(line_count(nifti_log) == 2);
  CHECK(nifti_log == loss_columns(read_text(dir / "run-dicom/log.csv")));
}

TEST_CASE("cli: predict on a DICOM series writes a mask whose affine is the series' geometry",
          "[cli]") {
  TempDir dir("clinical-predict");
  synth(dir / "nifti", "nifti");
  synth(dir / "dicom", "dicom");
  const std::string checkpoint = tiny_checkpoint(dir);

  // A series written here, with an origin of our own: voxel (i, j, k) at LPS
  // origin + (i dx, j dy, k dz); in RAS x and y change sign.
  const ich::data::Volume v = ich::data::read_nifti(dir / "nifti/ct_scans/001.nii");
  ich::data::DicomWriteOptions w;
  w.seed = 5;
  w.origin[0] = -12.5, w.origin[1] = 30.25, w.origin[2] = -71;
  const ich::data::DicomWriteResult written = ich::data::write_dicom_series(dir / "own", v, w);
  const Result p = run_ichseg_ok({"predict", dir / "own", "--checkpoint", checkpoint, "--out",
                                  dir / "po", "--overlays", "none"});
  CHECK_THAT(p.out, Contains("series " + written.series_uid));
  const std::string mask_path = dir / "po/own_mask.nii.gz";
  REQUIRE(fs::exists(mask_path));
  const double expected[4][4] = {{-v.spacing[0], 0, 0, 12.5},
                                 {0, -v.spacing[1], 0, -30.25},
                                 {0, 0, v.spacing[2], -71},
                                 {0, 0, 0, 1}};
  const Transforms t = read_transforms(mask_path);
  CHECK(t.sform_code == 1);
  CHECK(t.qform_code == 1);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      INFO("row " << r << " column " << c);
      CHECK(t.sform[r][c] == Approx(expected[r][c]).margin(1e-4));
      CHECK(t.qform[r][c] == Approx(expected[r][c]).margin(1e-4));
    }
  // Every slice of the mask sits where its DICOM file says (ImagePositionPatient, LPS).
  const ich::data::DicomFolder folder = ich::data::scan_dicom_folder(dir / "own");
  REQUIRE(folder.series.size() == 1);
  for (const ich::data::DicomSliceHeader& h : folder.series[0].slices) {
    const size_t k = size_t(std::find(written.files.begin(), written.files.end(), h.path) -
                            written.files.begin());
    REQUIRE(k < written.files.size());
    CHECK(-(t.sform[0][2] * k + t.sform[0][3]) == Approx(h.position[0]).margin(1e-4));
    CHECK(-(t.sform[1][2] * k + t.sform[1][3]) == Approx(h.position[1]).margin(1e-4));
    CHECK(t.sform[2][2] * k + t.sform[2][3] == Approx(h.position[2]).margin(1e-4));
  }

  // The same voxels as predicting the NIfTI volume of the same phantom.
  run_ichseg_ok({"predict", dir / "nifti/ct_scans/001.nii", "--checkpoint", checkpoint, "--out",
                 dir / "pn", "--overlays", "none"});
  const ich::data::Volume from_dicom = ich::data::read_nifti(mask_path);
  const ich::data::Volume from_nifti = ich::data::read_nifti(dir / "pn/001_mask.nii");
  CHECK(from_dicom.nx == v.nx);
  CHECK(from_dicom.nz == v.nz);
  CHECK(from_dicom.values == from_nifti.values);

  // A folder of two series: without --series the command stops with the list.
  fs::create_directories(dir / "two");
  fs::copy(dir / "dicom/ct_scans/001", dir / "two/a", fs::copy_options::recursive);
  fs::copy(dir / "dicom/ct_scans/002", dir / "two/b", fs::copy_options::recursive);
  const std::vector<nlohmann::json> listed =
      json_lines(run_ichseg_ok({"info", "--json", dir / "two"}).out);
  REQUIRE(listed.size() == 2);
  const Result stopped =
      run_ichseg({"predict", dir / "two", "--checkpoint", checkpoint, "--out", dir / "pt"});
  CHECK(stopped.exit_code != 0);
  CHECK_THAT(stopped.err, Contains("holds 2 series") &&
                              Contains(listed[0]["series_uid"].get<std::string>()) &&
                              Contains(listed[1]["series_uid"].get<std::string>()));
  CHECK_FALSE(fs::exists(dir / "pt/two_mask.nii.gz"));
  const std::string uid_b =
      listed[0]["description"].get<std::string>().find("002") != std::string::npos
          ? listed[0]["series_uid"].get<std::string>()
          : listed[1]["series_uid"].get<std::string>();
  run_ichseg_ok({"predict", dir / "two", "--series", uid_b, "--checkpoint", checkpoint, "--out",
                 dir / "pt", "--overlays", "none"});
  run_ichseg_ok({"predict", dir / "dicom/ct_scans/002", "--checkpoint", checkpoint, "--out",
                 dir / "p2", "--overlays", "none"});
  CHECK(ich::data::read_nifti(dir / "pt/two_mask.nii.gz").values ==
        ich::data::read_nifti(dir / "p2/002_mask.nii.gz").values);
}

TEST_CASE("cli: info counts non-finite voxels, min/max/mean over the finite ones as nibabel",
          "[cli]") {
  TempDir dir("clinical-nonfinite-info");
  std::vector<float> values(7 * 6 * 5);
  for (size_t i = 0; i < values.size(); ++i) values[i] = -1024.0f + 3.25f * float(i * i % 997);
  values[3] = kNan, values[40] = kNan, values[41] = kInf, values[200] = -kInf;
  const ich::data::FiniteStats want =
      ich::data::finite_stats(values.data(), int64_t(values.size()));
  REQUIRE(want.nonfinite == 4);
  // nibabel (Debian's python3-nibabel) reads the same files, when it is installed.
  const bool have_nibabel =
      stdout_of("/usr/bin/python3 -c 'import nibabel, numpy; print(1)' 2>/dev/null") == "1\n";
  if (!have_nibabel)
    WARN("python3-nibabel is not installed: the comparison with nibabel is skipped");
  int compared_with_nibabel = 0;
  for (int datatype : {int(ich::data::kNiftiFloat32), int(ich::data::kNiftiFloat64)}) {
    for (const char* ext : {".nii", ".nii.gz"}) {
      const std::string path =
          dir / (std::string("v_") + ich::data::nifti_datatype_name(datatype) + ext);
      INFO(path);
      ich::data::NiftiWriteOptions o;
      if (datatype == ich::data::kNiftiFloat32) {
        ich::data::write_nifti(path, 7, 6, 5, datatype, values.data(), o);
      } else {
        const std::vector<double> d(values.begin(), values.end());
        ich::data::write_nifti(path, 7, 6, 5, datatype, d.data(), o);
      }
      const Result text = run_ichseg_ok({"info", path});
      CHECK_THAT(text.out, Contains("4 non-finite voxels"));
      const nlohmann::json j = json_lines(run_ichseg_ok({"info", "--json", path}).out).at(0);
      CHECK(j["nonfinite"] == 4);
      CHECK(j["min"].get<double>() == Approx(want.min).epsilon(1e-6));
      CHECK(j["max"].get<double>() == Approx(want.max).epsilon(1e-6));
      CHECK(j["mean"].get<double>() == Approx(want.mean).epsilon(1e-6));
      CHECK(j["min"].get<double>() > -1025);  // -Inf is not the minimum, nor NaN read as 0 the mean
      if (!have_nibabel) continue;
      const std::string py = stdout_of(
          "/usr/bin/python3 -c 'import sys, json, numpy as np, nibabel as nib; "
          "d = np.asanyarray(nib.load(sys.argv[1]).dataobj).astype(np.float64); "
          "f = np.where(np.isfinite(d), d, np.nan); "
          "print(json.dumps([int((~np.isfinite(d)).sum()), float(np.nanmin(f)), "
          "float(np.nanmax(f)), float(np.nanmean(f))]))' " +
          path);
      INFO("nibabel: " << py);
      const nlohmann::json nb = nlohmann::json::parse(py);
      CHECK(j["nonfinite"] == nb[0]);
      CHECK(j["min"].get<double>() == Approx(nb[1].get<double>()).epsilon(1e-4));
      CHECK(j["max"].get<double>() == Approx(nb[2].get<double>()).epsilon(1e-4));
      CHECK(j["mean"].get<double>() == Approx(nb[3].get<double>()).epsilon(1e-4));
      ++compared_with_nibabel;
    }
  }
  CHECK(compared_with_nibabel == (have_nibabel ? 4 : 0));
}

TEST_CASE("cli: prepare / train / predict refuse non-finite voxels unless --nonfinite", "[cli]") {
  TempDir dir("clinical-nonfinite");
  run_ichseg_ok({"synth", "--out", dir / "ct", "--patients", "3", "--size", "32", "--slices", "3",
                 "--slice-jitter", "0", "--healthy-fraction", "0", "--seed", "4"});
  // Patient 2 as float32 with three NaN and one Inf.
  const std::string scan = dir / "ct/ct_scans/002.nii";
  ich::data::Volume v = ich::data::read_nifti(scan);
  double finite_min = 1e30;
  for (float x : v.values) finite_min = std::min<double>(finite_min, x);
  v.values[5] = kNan, v.values[6] = kNan, v.values[32 * 32 + 7] = kNan, v.values[9] = kInf;
  ich::data::NiftiWriteOptions o;
  for (int i = 0; i < 3; ++i) o.spacing[i] = v.spacing[i];
  ich::data::write_nifti(scan, v.nx, v.ny, v.nz, ich::data::kNiftiFloat32, v.values.data(), o);

  require_one_line_error(run_ichseg({"prepare", "--data", dir / "ct", "--out", dir / "p"}),
                         scan + " has 4 non-finite voxels");
  CHECK_FALSE(fs::exists(dir / "p"));
  require_one_line_error(
      run_ichseg({"prepare", "--data", dir / "ct", "--out", dir / "p", "--nonfinite", "nan"}),
      "'nan' is not one of refuse, zero, min");
  CHECK_FALSE(fs::exists(dir / "p"));

  const Result min =
      run_ichseg_ok({"prepare", "--data", dir / "ct", "--out", dir / "p", "--nonfinite", "min"});
  CHECK_THAT(min.out, Contains("4 non-finite voxels replaced (--nonfinite min"));
  const nlohmann::json record = nlohmann::json::parse(read_text(dir / "p/prepare.json"));
  CHECK(record["nonfinite"] == "min");
  CHECK(record["patients"][0]["nonfinite"] == 0);
  CHECK(record["patients"][1]["nonfinite"] == 4);
  CHECK(record["patients"][1]["nonfinite_replaced_with"].get<double>() == finite_min);
  // The replaced voxels are air in the PNG (windowed to 0), not 0 HU (brain, mid-grey).
  const ich::data::Image8 slice1 = ich::data::read_image(dir / "p/image/002_001.png");
  CHECK(slice1.pixels[5] == 0);
  CHECK(slice1.pixels[9] == 0);
  const ich::data::Image8 slice2 = ich::data::read_image(dir / "p/image/002_002.png");
  CHECK(slice2.pixels[7] == 0);

  // train on the CT-ICH folder itself: refused, then recorded in config.json.
  auto train = tiny_train_args(dir, "r", 1);
  train[2] = dir / "ct";
  require_one_line_error(run_ichseg(train), scan + " has 4 non-finite voxels");
  train.insert(train.end(), {"--nonfinite", "zero"});
  run_ichseg_ok(train);
  const nlohmann::json config = nlohmann::json::parse(read_text(dir / "r/config.json"));
  CHECK(config["nonfinite"] == "zero");

  // predict: refused with nothing written, then replaced by 0 HU as asked.
  const std::string checkpoint = dir / "r/checkpoints/best.safetensors";
  require_one_line_error(
      run_ichseg({"predict", scan, "--checkpoint", checkpoint, "--out", dir / "q"}),
      scan + " has 4 non-finite voxels");
  CHECK_FALSE(fs::exists(dir / "q/002_mask.nii"));
  const Result zero = run_ichseg_ok(
      {"predict", scan, "--checkpoint", checkpoint, "--out", dir / "q", "--nonfinite", "zero"});
  CHECK_THAT(zero.out, Contains("4 non-finite voxels replaced by 0 HU"));
  CHECK(fs::exists(dir / "q/002_mask.nii"));
}

TEST_CASE("cli: bad DICOM input gives one line, a non-zero exit and nothing written", "[cli]") {
  TempDir dir("clinical-bad");
  synth(dir / "nifti", "nifti");
  const std::string checkpoint = tiny_checkpoint(dir);
  const ich::data::Volume v = ich::test::hu_volume(8, 8, 4);

  // Each case: a folder of slices made bad, fed to predict, and to prepare as ct_scans/001/
  // of a CT-ICH folder (with a mask of the series' size).
  struct Case {
    std::string name, expected;
    std::function<void(const std::string& dir, const ich::data::DicomWriteResult&)> spoil;
    bool info_fails;  // the folder cannot even be listed (else info lists it as not readable)
  };
  const std::vector<Case> cases = {
      {"no DICOM", "holds no DICOM file",
       [](const std::string& d, const ich::data::DicomWriteResult& w) {
         for (const std::string& f : w.files) fs::remove(f);
         write_text(d + "/README", "the scans of patient 7\n");
       },
       true},
      {"truncated", "is truncated",
       [](const std::string&, const ich::data::DicomWriteResult& w) {
         std::vector<uint8_t> bytes = file_bytes(w.files[1]);
         bytes.resize(bytes.size() - 10);
         write_bytes(w.files[1], bytes);
       },
       true},
      {"not DICOM", "is not a DICOM file",
       [](const std::string& d, const ich::data::DicomWriteResult&) {
         write_text(d + "/IM0009.dcm", "not really\n");
       },
       true},
      {"mixed sizes", "mixed sizes",
       [](const std::string& d, const ich::data::DicomWriteResult&) {
         ich::data::DicomWriteOptions o = write_options();
         o.origin[2] += 100;
         write_dicom_series(d + "/upper", hu_volume(6, 6, 2), o);
       },
       false},
      {"transfer syntax", "1.2.840.10008.1.2.4.100",
       [](const std::string&, const ich::data::DicomWriteResult& w) {
         edit_dicom(w.files[2], [](gdcm::DataSet&, gdcm::FileMetaInformation& m) {
           set_text(m, 0x0002, 0x0010, gdcm::VR::UI, "1.2.840.10008.1.2.4.100");
         });
       },
       false},
      {"multi-frame", "is a multi-frame object (2 frames",
       [](const std::string&, const ich::data::DicomWriteResult& w) {
         edit_dicom(w.files[1], [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
           set_text(d, 0x0028, 0x0008, gdcm::VR::IS, "2");
           set_bytes(d, 0x7FE0, 0x0010, gdcm::VR::OW, std::vector<uint8_t>(8 * 8 * 2 * 2, 0));
         });
       },
       false},
      {"MR", "is MR",
       [](const std::string&, const ich::data::DicomWriteResult& w) {
         for (const std::string& f : w.files)
           edit_dicom(f, [](gdcm::DataSet& d, gdcm::FileMetaInformation&) {
             set_text(d, 0x0008, 0x0060, gdcm::VR::CS, "MR");
             set_text(d, 0x0008, 0x0016, gdcm::VR::UI, "1.2.840.10008.5.1.4.1.1.4");
           });
       },
       false},
  };
  int n = 0;
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string root = dir / ("case" + std::to_string(n++));
    const std::string series = root + "/ct_scans/001";
    const ich::data::DicomWriteResult w = write_dicom_series(series, v, write_options());
    fs::create_directories(root + "/masks");
    const std::vector<uint8_t> mask(size_t(v.voxels()), 0);
    ich::data::write_nifti(root + "/masks/001.nii", v.nx, v.ny, v.nz, ich::data::kNiftiUint8,
                           mask.data());
    write_text(root + "/hemorrhage_diagnosis_raw_ct.csv",
               "PatientNumber,SliceNumber,Intraventricular,Intraparenchymal,Subarachnoid,"
               "Epidural,Subdural,No_Hemorrhage,Fracture_Yes_No\n1,1,0,0,0,0,0,1,0\n");
    // The good folder works (so what fails below is the spoiling).
    run_ichseg_ok({"prepare", "--data", root, "--out", root + "/good"});
    c.spoil(series, w);

    require_one_line_error(
        run_ichseg({"predict", series, "--checkpoint", checkpoint, "--out", root + "/pred"}),
        c.expected);
    CHECK_FALSE(fs::exists(root + "/pred/001_mask.nii.gz"));
    require_one_line_error(run_ichseg({"prepare", "--data", root, "--out", root + "/p"}),
                           c.expected);
    CHECK_FALSE(fs::exists(root + "/p"));
    const Result info = run_ichseg({"info", series});
    INFO(info.out << info.err);
    if (c.info_fails) {
      require_one_line_error(info, c.expected);
    } else {
      CHECK(info.exit_code == 0);
      CHECK_THAT(info.out, Contains("not read: ") && Contains(c.expected));
    }
  }
}
