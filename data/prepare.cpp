#include "data/prepare.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "data/csv.h"
#include "data/ctich.h"
#include "data/fileutil.h"
#include "data/image_io.h"
#include "data/rng.h"
#include "data/window.h"
#include "data/workers.h"

namespace fs = std::filesystem;

namespace ich::data {

std::map<int, std::string> assign_splits(std::vector<int> patients, const SplitOptions& o) {
  ICH_CHECK(o.folds == 0 || o.folds >= 2,
            "--folds " << o.folds << ": use 0 (train/val) or at least 2");
  ICH_CHECK(o.folds > 0 || (o.val_fraction >= 0.0 && o.val_fraction < 1.0),
            "the validation fraction " << o.val_fraction << " is not in [0, 1)");
  std::sort(patients.begin(), patients.end());
  ICH_CHECK(std::adjacent_find(patients.begin(), patients.end()) == patients.end(),
            "a patient is listed twice in the split");
  Rng r(mix({o.seed, 0x5b17}));
  for (size_t i = patients.size(); i > 1; --i) std::swap(patients[i - 1], patients[r.below(i)]);
  std::map<int, std::string> split;
  if (o.folds > 0) {
    for (size_t i = 0; i < patients.size(); ++i)
      split[patients[i]] = "fold" + std::to_string(i % o.folds);
    return split;
  }
  const size_t n = patients.size();
  size_t n_train = static_cast<size_t>(std::lround((1.0 - o.val_fraction) * double(n)));
  // With two or more patients and a non-zero fraction, both sides get at least one.
  if (o.val_fraction > 0.0 && n >= 2) n_train = std::clamp<size_t>(n_train, 1, n - 1);
  for (size_t i = 0; i < n; ++i) split[patients[i]] = i < n_train ? "train" : "val";
  return split;
}

std::string slice_file_name(int patient, int slice) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%03d_%03d.png", patient, slice);
  return buf;
}

PrepareSummary prepare_dataset(const PrepareOptions& o) {
  check_window(o.wl, o.ww);
  const CtIchDataset ds = open_ctich(o.data_dir, o.scan);
  std::vector<int> numbers;
  for (const PatientFiles& p : ds.patients) numbers.push_back(p.patient);
  const std::map<int, std::string> split = assign_splits(numbers, o.split);

  StagingDir staging(o.out_dir, kManifestCsv);
  const fs::path root(staging.path());
  std::error_code ec;
  for (const char* sub : {"image", "label"}) {
    fs::create_directory(root / sub, ec);
    ICH_CHECK(!ec, "cannot create " << (root / sub).string() << ": " << ec.message());
  }

  PrepareSummary summary;
  std::ostringstream manifest;
  manifest << "file,patient,slice,has_ich,subtypes,split\n";
  const int workers =
      o.threads > 0 ? o.threads : std::clamp<int>(std::thread::hardware_concurrency(), 1, 8);
  nlohmann::json record;
  record["wl"] = o.wl;
  record["ww"] = o.ww;
  record["only_hemorrhage"] = o.only_hemorrhage;
  record["nonfinite"] = nonfinite_policy_name(o.scan.nonfinite);
  record["series"] = o.scan.series;
  record["allow_gantry_tilt"] = o.scan.dicom.allow_gantry_tilt;
  record["allow_missing_slices"] = o.scan.dicom.allow_missing_slices;
  record["allow_irregular_spacing"] = o.scan.dicom.allow_irregular_spacing;
  record["patients"] = nlohmann::json::array();
  for (const PatientFiles& files : ds.patients) {
    const PatientVolumes pv = load_patient(files, o.scan);
    nlohmann::json p;
    p["patient"] = files.patient;
    p["scan"] = fs::path(files.scan_path).lexically_relative(o.data_dir).generic_string();
    p["format"] = files.scan_is_dicom ? "dicom" : "nifti";
    if (files.scan_is_dicom) p["series_uid"] = pv.series_uid;
    p["nonfinite"] = pv.scan.nonfinite;
    if (pv.scan.nonfinite > 0) p["nonfinite_replaced_with"] = pv.nonfinite_replaced_with;
    record["patients"].push_back(p);
    summary.nonfinite += pv.scan.nonfinite;
    const Volume& scan = pv.scan;
    const size_t plane = size_t(scan.nx) * scan.ny;
    ++summary.patients;
    // Slices are independent: workers take every workers-th slice; the manifest lines are
    // gathered per slice and written in slice order, so the output is the same for any count.
    std::vector<std::string> lines(scan.nz);
    std::vector<uint8_t> has_ich(scan.nz, 0);
    run_workers(workers, [&](int w) {
      Image8 image, label;
      image.w = label.w = scan.nx;
      image.h = label.h = scan.ny;
      image.pixels.resize(plane);
      label.pixels.resize(plane);
      for (int k = w; k < scan.nz; k += workers) {
        const uint8_t* mask = pv.mask.data() + k * plane;
        has_ich[k] = std::any_of(mask, mask + plane, [](uint8_t m) { return m != 0; });
        if (o.only_hemorrhage && !has_ich[k]) continue;
        // Slice k: ny rows of nx columns, x fastest (pixel (j, i) = voxel (i, j, k)).
        window_to_u8(scan.slice(k), static_cast<int64_t>(plane), o.wl, o.ww, image.pixels.data());
        for (size_t i = 0; i < plane; ++i) label.pixels[i] = mask[i] ? 255 : 0;
        const std::string name = slice_file_name(files.patient, k + 1);
        write_png((root / "image" / name).string(), image);
        write_png((root / "label" / name).string(), label);
        const SliceDiagnosis* d = ds.find(files.patient, k + 1);
        std::ostringstream line;
        line << name << "," << files.patient << "," << k + 1 << "," << int(has_ich[k]) << ","
             << (d ? d->subtypes_string() : "") << "," << split.at(files.patient) << "\n";
        lines[k] = line.str();
      }
    });
    for (int k = 0; k < scan.nz; ++k) {
      if (o.only_hemorrhage && !has_ich[k]) {
        ++summary.slices_skipped;
        continue;
      }
      manifest << lines[k];
      ++summary.slices;
      summary.slices_with_ich += has_ich[k];
    }
  }
  write_file_atomic((root / kManifestCsv).string(), manifest.str());
  write_file_atomic((root / kPrepareJson).string(), record.dump(2) + "\n");
  staging.commit();
  return summary;
}

std::vector<ManifestRow> read_manifest(const std::string& path) {
  const CsvTable t = read_csv(path);
  const int file_col = t.column("file"), patient_col = t.column("patient"),
            slice_col = t.column("slice"), ich_col = t.column("has_ich"),
            subtypes_col = t.column("subtypes"), split_col = t.column("split");
  std::vector<ManifestRow> rows;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    ManifestRow m;
    m.file = t.rows[r][file_col];
    m.patient = static_cast<int>(csv_int(t, r, patient_col));
    m.slice = static_cast<int>(csv_int(t, r, slice_col));
    m.has_ich = csv_int(t, r, ich_col) != 0;
    m.subtypes = t.rows[r][subtypes_col];
    m.split = t.rows[r][split_col];
    ICH_CHECK(!m.file.empty() && m.file.find('/') == std::string::npos,
              path << " line " << t.row_lines[r] << ": invalid file name '" << m.file << "'");
    rows.push_back(std::move(m));
  }
  return rows;
}

}  // namespace ich::data
