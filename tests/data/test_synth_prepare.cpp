// The synthetic phantom (plausible HU per tissue, the five subtypes, healthy patients,
// masks consistent with the CSV, determinism) and the synth -> prepare round trip.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "data/ctich.h"
#include "data/image_io.h"
#include "data/nifti.h"
#include "data/phantom.h"
#include "data/prepare.h"
#include "data/window.h"
#include "data_test_util.h"

using namespace ich::data;
using ich::test::TempDir;
namespace fs = std::filesystem;

namespace {

SynthOptions small_synth(int patients, uint64_t seed) {
  SynthOptions o;
  o.patients = patients;
  o.size = 96;
  o.slices = 12;
  o.slice_jitter = 2;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_CASE("synth: tissues lie in their HU ranges, grey brighter than white", "[data]") {
  const SynthOptions o = small_synth(3, 11);
  double sum[kTissueCount] = {}, count[kTissueCount] = {};
  for (int p = 1; p <= 3; ++p) {
    const PhantomPatient pp = make_phantom_patient(o, p);
    REQUIRE(pp.hu.size() == size_t(pp.nx) * pp.ny * pp.nz);
    for (size_t i = 0; i < pp.hu.size(); ++i) {
      const int t = pp.tissue[i];
      float lo, hi;
      tissue_hu_range(t, &lo, &hi);
      INFO(tissue_name(t) << " voxel at " << i << " = " << pp.hu[i]);
      REQUIRE(pp.hu[i] >= lo);
      REQUIRE(pp.hu[i] <= hi);
      REQUIRE((pp.mask[i] == 1) == (t == kTissueBlood));
      sum[t] += pp.hu[i];
      count[t] += 1;
    }
  }
  for (int t :
       {kTissueSkull, kTissueGrey, kTissueWhite, kTissueVentricle, kTissueCsf, kTissueBlood}) {
    INFO(tissue_name(t));
    CHECK(count[t] > 0);
  }
  const double grey = sum[kTissueGrey] / count[kTissueGrey],
               white = sum[kTissueWhite] / count[kTissueWhite];
  CHECK(grey > white + 6.0);
  CHECK(sum[kTissueSkull] / count[kTissueSkull] > 900.0);
  CHECK(sum[kTissueBlood] / count[kTissueBlood] > grey + 15.0);  // hemorrhage is hyperdense
  // The specified ranges: skull 700-1500, parenchyma 20-45, CSF 0-15, blood 50-90.
  float lo, hi;
  tissue_hu_range(kTissueSkull, &lo, &hi);
  CHECK((lo >= 700 && hi <= 1500));
  tissue_hu_range(kTissueVentricle, &lo, &hi);
  CHECK((lo >= 0 && hi <= 15));
  tissue_hu_range(kTissueBlood, &lo, &hi);
  CHECK((lo >= 50 && hi <= 90));
  for (int t : {kTissueGrey, kTissueWhite, kTissueDeepGrey}) {
    tissue_hu_range(t, &lo, &hi);
    CHECK((lo >= 20 && hi <= 45));
  }
}

TEST_CASE("synth: every subtype appears, healthy patients have none, the CSV matches the masks",
          "[data]") {
  const SynthOptions o = small_synth(16, 3);
  int subtype_slices[kSubtypeCount] = {};
  for (int p = 1; p <= o.patients; ++p) {
    const PhantomPatient pp = make_phantom_patient(o, p);
    const size_t plane = size_t(pp.nx) * pp.ny;
    const bool healthy = p % 4 == 0;  // floor(p / 4) steps at 4, 8, 12, 16
    size_t blood = 0;
    REQUIRE(int(pp.diagnosis.size()) == pp.nz);
    for (int k = 0; k < pp.nz; ++k) {
      const SliceDiagnosis& d = pp.diagnosis[k];
      CHECK(d.slice == k + 1);
      size_t on_slice = 0;
      for (size_t i = 0; i < plane; ++i) on_slice += pp.mask[k * plane + i];
      blood += on_slice;
      INFO("patient " << p << " slice " << k + 1);
      CHECK(d.no_hemorrhage == (on_slice == 0));
      for (int s = 0; s < kSubtypeCount; ++s) subtype_slices[s] += d.subtype[s];
    }
    INFO("patient " << p);
    CHECK((blood == 0) == healthy);
  }
  for (int s = 0; s < kSubtypeCount; ++s) {
    INFO(subtype_abbrev(s));
    CHECK(subtype_slices[s] > 0);
  }
}

TEST_CASE("synth: the same seed writes the same bytes, a patient does not depend on the count",
          "[data]") {
  TempDir dir("synth-det");
  SynthOptions o = small_synth(3, 42);
  write_synthetic_dataset(dir / "a", o);
  write_synthetic_dataset(dir / "b", o);
  for (const std::string& f : std::vector<std::string>{"ct_scans/001.nii", "ct_scans/003.nii",
                                                       "masks/002.nii", kDiagnosisCsv}) {
    INFO(f);
    CHECK(ich::test::file_bytes(dir / ("a/" + f)) == ich::test::file_bytes(dir / ("b/" + f)));
  }
  o.patients = 2;
  write_synthetic_dataset(dir / "c", o);
  CHECK(ich::test::file_bytes(dir / "a/ct_scans/002.nii") ==
        ich::test::file_bytes(dir / "c/ct_scans/002.nii"));
  o.patients = 3;
  o.seed = 43;
  write_synthetic_dataset(dir / "d", o);
  CHECK(ich::test::file_bytes(dir / "a/ct_scans/001.nii") !=
        ich::test::file_bytes(dir / "d/ct_scans/001.nii"));
  // Writing again over an earlier synth output replaces it.
  o.seed = 42;
  write_synthetic_dataset(dir / "d", o);
  CHECK(ich::test::file_bytes(dir / "a/ct_scans/001.nii") ==
        ich::test::file_bytes(dir / "d/ct_scans/001.nii"));
  // Nothing but the layout: two folders and the CSV.
  std::vector<std::string> entries = ich::test::folder_entries(dir / "a");
  std::sort(entries.begin(), entries.end());
  CHECK(entries == std::vector<std::string>{"ct_scans", kDiagnosisCsv, "masks"});
}

TEST_CASE("prepare: synth -> prepare round trip (counts, masks, windowed pixels, split)",
          "[data]") {
  TempDir dir("roundtrip");
  const std::string data = dir / "ds";
  SynthOptions so = small_synth(5, 9);
  so.size = 64;
  so.slices = 8;
  write_synthetic_dataset(data, so);
  // Gaps in patient numbers are normal: remove patient 2 entirely.
  fs::remove(data + "/ct_scans/002.nii");
  fs::remove(data + "/masks/002.nii");
  std::vector<SliceDiagnosis> rows = read_diagnosis_csv(data + "/" + kDiagnosisCsv);
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [](const SliceDiagnosis& d) { return d.patient == 2; }),
             rows.end());
  ich::test::write_text(data + "/" + kDiagnosisCsv, format_diagnosis_csv(rows));

  PrepareOptions po;
  po.data_dir = data;
  po.out_dir = dir / "prep";
  const PrepareSummary s = prepare_dataset(po);
  CHECK(s.patients == 4);
  CHECK(s.slices == int(rows.size()));

  const CtIchDataset ds = open_ctich(data);
  const std::vector<ManifestRow> manifest = read_manifest(po.out_dir + "/manifest.csv");
  std::map<int, int> per_patient;
  std::map<int, std::set<std::string>> splits_of;
  for (const ManifestRow& m : manifest) {
    ++per_patient[m.patient];
    splits_of[m.patient].insert(m.split);
    const SliceDiagnosis* d = ds.find(m.patient, m.slice);
    REQUIRE(d != nullptr);
    CHECK(m.has_ich == !d->no_hemorrhage);
    CHECK(m.subtypes == d->subtypes_string());
    CHECK(m.file == slice_file_name(m.patient, m.slice));
  }
  for (const PatientFiles& p : ds.patients)
    CHECK(per_patient[p.patient] == ds.slices_of(p.patient));
  CHECK(per_patient.count(2) == 0);
  int val_patients = 0;
  for (const auto& [patient, splits] : splits_of) {
    CHECK(splits.size() == 1);  // a patient is never in two splits
    val_patients += *splits.begin() == "val";
  }
  CHECK(val_patients == 1);  // round(0.2 * 4 patients)

  // Pixels: the label is the mask (0/255), the image the windowed HU.
  for (const PatientFiles& p : ds.patients) {
    const PatientVolumes pv = load_patient(p);
    const size_t plane = size_t(pv.scan.nx) * pv.scan.ny;
    for (int k = 0; k < pv.scan.nz; ++k) {
      const std::string name = slice_file_name(p.patient, k + 1);
      const Image8 image = read_image(po.out_dir + "/image/" + name);
      const Image8 label = read_image(po.out_dir + "/label/" + name);
      REQUIRE(image.w == pv.scan.nx);
      REQUIRE(image.h == pv.scan.ny);
      std::vector<uint8_t> expected(plane);
      window_to_u8(pv.scan.slice(k), int64_t(plane), 40.f, 120.f, expected.data());
      CHECK(image.pixels == expected);
      size_t wrong = 0;
      for (size_t i = 0; i < plane; ++i)
        wrong += label.pixels[i] != (pv.mask[k * plane + i] ? 255 : 0);
      CHECK(wrong == 0);
    }
  }

  // The thread count changes nothing in the output.
  PrepareOptions threaded = po;
  threaded.out_dir = dir / "prep_threads";
  threaded.threads = 3;
  prepare_dataset(threaded);
  CHECK(ich::test::read_text(threaded.out_dir + "/manifest.csv") ==
        ich::test::read_text(po.out_dir + "/manifest.csv"));
  for (const ManifestRow& m : manifest) {
    REQUIRE(ich::test::file_bytes(threaded.out_dir + "/image/" + m.file) ==
            ich::test::file_bytes(po.out_dir + "/image/" + m.file));
  }

  // --only-hemorrhage keeps exactly the slices with ICH; k folds deal patients round-robin.
  po.out_dir = dir / "prep_ich";
  po.only_hemorrhage = true;
  po.split.folds = 2;
  const PrepareSummary only = prepare_dataset(po);
  CHECK(only.slices == s.slices_with_ich);
  CHECK(only.slices + only.slices_skipped == s.slices);
  std::map<std::string, std::set<int>> fold_patients;
  for (const ManifestRow& m : read_manifest(po.out_dir + "/manifest.csv")) {
    CHECK(m.has_ich);
    fold_patients[m.split].insert(m.patient);
  }
  for (const auto& [fold, patients] : fold_patients) CHECK((fold == "fold0" || fold == "fold1"));
  CHECK(ich::test::folder_entries(po.out_dir + "/image").size() == size_t(only.slices));
}

TEST_CASE("prepare: splits are by patient, seeded, and cover everyone", "[data]") {
  std::vector<int> patients;
  for (int p = 49; p <= 130; ++p)
    if (p < 59 || p > 65) patients.push_back(p);  // the public release's numbers
  SplitOptions o;
  o.seed = 1;
  const auto a = assign_splits(patients, o), b = assign_splits(patients, o);
  CHECK(a == b);
  int val = 0;
  for (const auto& [p, s] : a) val += s == "val";
  CHECK(a.size() == patients.size());
  CHECK(val == 15);  // 75 patients: round(0.8 * 75) = 60 train
  o.seed = 2;
  CHECK(assign_splits(patients, o) != a);
  o.folds = 5;
  std::map<std::string, int> per_fold;
  for (const auto& [p, s] : assign_splits(patients, o)) ++per_fold[s];
  CHECK(per_fold.size() == 5);
  for (const auto& [f, n] : per_fold) CHECK(n == 15);
}
