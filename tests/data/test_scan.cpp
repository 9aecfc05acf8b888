// data/scan.h: non-finite voxels counted before anything replaces them, and refused or
// replaced as asked; the NIfTI writer's affine; the CT-ICH layout with DICOM series folders
// (synth --format dicom) holding the same HU as the NIfTI phantom.
#include <nifti2_io.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>

#include "data/ctich.h"
#include "data/data_test_util.h"
#include "data/dicom_test_util.h"
#include "data/nifti.h"
#include "data/nonfinite.h"
#include "data/scan.h"
#include "data/synth_dicom.h"

using namespace ich::data;
using Catch::Matchers::Contains;
using ich::test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// 6x5x4 HU values from -1000 up, with NaN at voxel 7, +Inf at 30, -Inf at 101.
std::vector<float> values_with_nonfinite() {
  std::vector<float> v(6 * 5 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = -1000.0f + 17.5f * float(i);
  v[7] = kNan;
  v[30] = kInf;
  v[101] = -kInf;
  return v;
}

// Writes the values as float32 or float64 to path.
void write_float_nifti(const std::string& path, int datatype, const std::vector<float>& v) {
  NiftiWriteOptions o;
  o.spacing[0] = 0.5;
  o.spacing[1] = 0.5;
  o.spacing[2] = 3;
  if (datatype == kNiftiFloat32) {
    write_nifti(path, 6, 5, 4, datatype, v.data(), o);
  } else {
    const std::vector<double> d(v.begin(), v.end());
    write_nifti(path, 6, 5, 4, datatype, d.data(), o);
  }
}

// The 4x4 sform (or qform) nifti_clib reads from a file.
struct FileTransforms {
  int sform_code = 0, qform_code = 0;
  double sform[4][4], qform[4][4];
};
FileTransforms read_transforms(const std::string& path) {
  nifti_set_debug_level(0);
  nifti_image* nim = nifti_image_read(path.c_str(), 0);
  REQUIRE(nim != nullptr);
  FileTransforms t;
  t.sform_code = nim->sform_code;
  t.qform_code = nim->qform_code;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      t.sform[r][c] = nim->sto_xyz.m[r][c];
      t.qform[r][c] = nim->qto_xyz.m[r][c];
    }
  nifti_image_free(nim);
  return t;
}

void require_same_matrix(const double m[4][4], const Affine& a, double tol) {
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      INFO("row " << r << " column " << c);
      CHECK(m[r][c] == Approx(a.m[r][c]).margin(tol));
    }
}

}  // namespace

TEST_CASE("scan: non-finite voxels of float32/float64 .nii/.nii.gz are counted, refused, replaced",
          "[data]") {
  TempDir dir("scan-nonfinite");
  const std::vector<float> values = values_with_nonfinite();
  // Expected statistics over the finite voxels, in double.
  double lo = 1e30, hi = -1e30, sum = 0;
  int finite = 0;
  for (float x : values) {
    if (!std::isfinite(x)) continue;
    lo = std::min<double>(lo, x), hi = std::max<double>(hi, x), sum += x, ++finite;
  }
  for (int datatype : {int(kNiftiFloat32), int(kNiftiFloat64)}) {
    for (const char* ext : {".nii", ".nii.gz"}) {
      const std::string path = dir / (std::string("v_") + nifti_datatype_name(datatype) + ext);
      INFO(path);
      write_float_nifti(path, datatype, values);

      const Volume v = read_nifti(path);
      CHECK(v.datatype == datatype);
      CHECK(v.nonfinite == 3);
      CHECK(std::isnan(v.values[7]));  // kept, not turned into 0 as nifti_clib's loader does
      CHECK(v.values[30] == kInf);
      CHECK(v.values[101] == -kInf);
      CHECK(v.values[8] == values[8]);
      const FiniteStats s = finite_stats(v.values.data(), v.voxels());
      CHECK(s.nonfinite == 3);
      CHECK(s.finite == finite);
      CHECK(s.min == lo);
      CHECK(s.max == hi);
      CHECK(s.mean == Approx(sum / finite).epsilon(1e-12));

      REQUIRE_THROWS_WITH(read_scan(path), Contains(path) && Contains("3 non-finite voxels") &&
                                               Contains("--nonfinite"));
      ScanOptions o;
      o.nonfinite = NonfinitePolicy::zero;
      const Scan zero = read_scan(path, o);
      CHECK(zero.volume.nonfinite == 3);
      CHECK(zero.replaced_with == 0.0f);
      CHECK(zero.volume.values[7] == 0.0f);
      CHECK(zero.volume.values[30] == 0.0f);
      CHECK(zero.volume.values[101] == 0.0f);
      CHECK(zero.volume.values[8] == values[8]);
      o.nonfinite = NonfinitePolicy::min;
      const Scan min = read_scan(path, o);
      CHECK(min.replaced_with == float(lo));
      CHECK(min.volume.values[7] == float(lo));
      CHECK(min.volume.values[30] == float(lo));
      CHECK(count_nonfinite(min.volume.values.data(), min.volume.voxels()) == 0);
    }
  }
  // A finite volume passes every policy untouched; integer files have nothing to count.
  std::vector<float> clean = values;
  clean[7] = clean[30] = clean[101] = 5;
  write_float_nifti(dir / "clean.nii", kNiftiFloat32, clean);
  CHECK(read_scan(dir / "clean.nii").volume.values == clean);
  // All non-finite: nothing to take the minimum of, refused under every policy.
  write_float_nifti(dir / "nan.nii", kNiftiFloat32, std::vector<float>(120, kNan));
  ScanOptions zero;
  zero.nonfinite = NonfinitePolicy::zero;
  REQUIRE_THROWS_WITH(read_scan(dir / "nan.nii", zero), Contains("no finite voxel"));
  CHECK(parse_nonfinite_policy("min") == NonfinitePolicy::min);
  REQUIRE_THROWS_WITH(parse_nonfinite_policy("nan"), Contains("not one of refuse, zero, min"));
}

TEST_CASE("scan: a float file cut in its voxels is still named as truncated", "[data]") {
  TempDir dir("scan-cut");
  write_float_nifti(dir / "v.nii", kNiftiFloat64, values_with_nonfinite());
  std::vector<uint8_t> bytes = ich::test::file_bytes(dir / "v.nii");
  ich::test::write_bytes(dir / "v.nii", std::vector<uint8_t>(bytes.begin(), bytes.end() - 9));
  REQUIRE_THROWS_WITH(read_nifti(dir / "v.nii"), Contains(dir / "v.nii") && Contains("truncated"));
}

TEST_CASE("nifti: an affine given to the writer is the file's sform and qform", "[data]") {
  TempDir dir("nifti-affine");
  const std::vector<uint8_t> voxels(4 * 3 * 2, 1);
  // A rotation about z by 30 degrees with a flip of the first axis, spacing 0.7, 0.9, 2.5.
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  Affine a;
  const double cols[3][3] = {{-c * 0.7, -s * 0.7, 0}, {-s * 0.9, c * 0.9, 0}, {0, 0, 2.5}};
  for (int col = 0; col < 3; ++col)
    for (int r = 0; r < 3; ++r) a.m[r][col] = cols[col][r];
  a.m[0][3] = 101.5, a.m[1][3] = -20.25, a.m[2][3] = 33;
  for (int version : {1, 2}) {
    for (const char* name : {"r.nii", "r.nii.gz"}) {
      const std::string path = dir / (std::to_string(version) + name);
      INFO(path);
      NiftiWriteOptions o;
      o.version = version;
      o.has_affine = true;
      o.affine = a;
      write_nifti(path, 4, 3, 2, kNiftiUint8, voxels.data(), o);
      const FileTransforms t = read_transforms(path);
      CHECK(t.sform_code == 1);
      CHECK(t.qform_code == 1);
      require_same_matrix(t.sform, a, 1e-5);
      require_same_matrix(t.qform, a, 1e-5);
      const NiftiHeader h = read_nifti_header(path);
      CHECK(h.spacing[0] == Approx(0.7));
      CHECK(h.spacing[1] == Approx(0.9));
      CHECK(h.spacing[2] == Approx(2.5));
    }
  }
  // Sheared (a gantry tilt kept): the sform alone holds it, the qform is left unset.
  Affine sheared = a;
  sheared.m[1][2] = 0.4;
  NiftiWriteOptions o;
  o.has_affine = true;
  o.affine = sheared;
  write_nifti(dir / "s.nii", 4, 3, 2, kNiftiUint8, voxels.data(), o);
  const FileTransforms t = read_transforms(dir / "s.nii");
  CHECK(t.sform_code == 1);
  CHECK(t.qform_code == 0);
  require_same_matrix(t.sform, sheared, 1e-5);
}

TEST_CASE("scan: synth --format dicom holds the NIfTI phantom's HU, its masks the series' affine",
          "[data]") {
  TempDir dir("scan-synth-dicom");
  SynthOptions o;
  o.patients = 2;
  o.size = 40;
  o.slices = 4;
  o.slice_jitter = 1;
  o.seed = 9;
  const SynthSummary n = write_synthetic_dataset(dir / "nifti", o);
  const SynthSummary d = write_synthetic_dicom_dataset(dir / "dicom", o);
  CHECK(n.slices == d.slices);
  CHECK(n.slices_with_ich == d.slices_with_ich);
  CHECK(ich::test::read_text(dir / (std::string("nifti/") + kDiagnosisCsv)) ==
        ich::test::read_text(dir / (std::string("dicom/") + kDiagnosisCsv)));
  // Nothing of the NIfTI staging is left beside the output.
  for (const std::string& e : ich::test::folder_entries(dir.str()))
    CHECK((e == "nifti" || e == "dicom"));

  const CtIchDataset nds = open_ctich(dir / "nifti");
  const CtIchDataset dds = open_ctich(dir / "dicom");
  REQUIRE(dds.patients.size() == 2);
  for (size_t p = 0; p < 2; ++p) {
    const PatientFiles& f = dds.patients[p];
    INFO(f.scan_path);
    CHECK(f.scan_is_dicom);
    CHECK(f.scan_path == dir / ("dicom/ct_scans/" + patient_name(int(p) + 1)));
    CHECK(f.scan_header.nz == nds.patients[p].scan_header.nz);
    const PatientVolumes a = load_patient(nds.patients[p]);
    const PatientVolumes b = load_patient(f);
    CHECK(b.scan.values == a.scan.values);
    CHECK(b.mask == a.mask);
    CHECK_FALSE(b.series_uid.empty());

    // The mask's sform and qform are the series' voxel -> RAS affine.
    const Scan scan = read_scan(f.scan_path);
    double origin[3];
    dicom_centred_origin(a.scan, origin);
    Affine lps;
    for (int i = 0; i < 3; ++i) lps.m[i][i] = a.scan.spacing[i], lps.m[i][3] = origin[i];
    require_same_matrix(scan.ras.m, lps_to_ras(lps), 1e-6);
    const FileTransforms t = read_transforms(f.mask_path);
    require_same_matrix(t.sform, scan.ras, 1e-4);
    require_same_matrix(t.qform, scan.ras, 1e-4);
    // The series really is stored upside down: InstanceNumber 1 is the top slice.
    const DicomFolder folder = scan_dicom_folder(f.scan_path);
    const DicomSeries& s = folder.series.at(0);
    const DicomStack st = dicom_stack(s);
    CHECK(s.slices[size_t(st.order.back())].instance_number == 1);
  }
}

TEST_CASE("scan: the series of a folder of several, by --series or the only CT one", "[data]") {
  TempDir dir("scan-series");
  const Volume v = ich::test::hu_volume(8, 8, 3);
  const DicomWriteResult a = write_dicom_series(dir / "a", v, ich::test::write_options(1));
  const DicomWriteResult b = write_dicom_series(dir / "b", v, ich::test::write_options(2));
  const DicomFolder f = scan_dicom_folder(dir.str());
  REQUIRE(f.series.size() == 2);
  ScanOptions o;
  REQUIRE_THROWS_WITH(choose_series(f, o), Contains("holds 2 series") && Contains(a.series_uid) &&
                                               Contains(b.series_uid));
  o.series = {"2.25.1", b.series_uid};  // one of several UIDs (prepare's list over patients)
  CHECK(choose_series(f, o).uid == b.series_uid);
  o.series = {a.series_uid, b.series_uid};
  REQUIRE_THROWS_WITH(choose_series(f, o), Contains("holds two of the series asked for"));
  o.series = {"2.25.1"};
  o.series_required = true;  // predict --series: a folder without it is an error, listing
  REQUIRE_THROWS_WITH(choose_series(f, o), Contains("has no series 2.25.1"));
  o.series = {b.series_uid};
  const Scan s = read_scan(dir.str(), o);
  CHECK(s.dicom);
  CHECK(s.series_uid == b.series_uid);
  CHECK(s.volume.values == v.values);
}
