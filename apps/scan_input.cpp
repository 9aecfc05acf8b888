#include "apps/scan_input.h"

#include <filesystem>

#include "data/nifti.h"

namespace fs = std::filesystem;

namespace ich::app {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void ScanFlags::add_to(CLI::App& app, bool with_nonfinite) {
  app.add_option("--series", series,
                 "DICOM folders of several series: the SeriesInstanceUID to read (repeatable; "
                 "default: the only CT series)");
  if (with_nonfinite) {
    app.add_option("--nonfinite", nonfinite,
                   "a scan with NaN/Inf voxels: refuse it, or replace them by 0 HU (zero) or "
                   "by the scan's finite minimum, i.e. air (min)")
        ->capture_default_str();
  }
  app.add_flag("--allow-gantry-tilt", allow_gantry_tilt,
               "DICOM: read a tilted series as it was acquired (a sheared affine, kept in the "
               "sform) instead of refusing it");
  app.add_flag("--allow-missing-slices", allow_missing_slices,
               "DICOM: read a series with gaps of whole slices as it is (nothing is "
               "interpolated; the mean slice step is used) instead of refusing it");
  app.add_flag("--allow-irregular-spacing", allow_irregular_spacing,
               "DICOM: read a series whose slice gaps differ by more than 1% with the mean "
               "slice step instead of refusing it");
}

data::ScanOptions ScanFlags::options() const {
  data::ScanOptions o;
  o.series = series;
  o.nonfinite = data::parse_nonfinite_policy(nonfinite);
  o.dicom.allow_gantry_tilt = allow_gantry_tilt;
  o.dicom.allow_missing_slices = allow_missing_slices;
  o.dicom.allow_irregular_spacing = allow_irregular_spacing;
  return o;
}

bool is_scan_input(const std::string& path) {
  return ends_with(path, ".nii") || ends_with(path, ".nii.gz") || data::is_dicom_path(path);
}

std::string scan_stem(const std::string& path) {
  fs::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // "dir/049/"
  std::string name = p.filename().string();
  for (const char* ext : {".nii.gz", ".nii"})
    if (ends_with(name, ext)) return name.substr(0, name.size() - std::string(ext).size());
  return name;
}

std::string write_scan_mask(const std::string& out_dir, const data::Scan& scan,
                            const uint8_t* mask) {
  const std::string stem = scan_stem(scan.path);
  if (!scan.dicom) {
    const std::string written =
        (fs::path(out_dir) / (stem + "_mask" + (ends_with(scan.path, ".gz") ? ".nii.gz" : ".nii")))
            .string();
    data::write_nifti_like(written, scan.path, data::kNiftiUint8, mask);
    return written;
  }
  const std::string written = (fs::path(out_dir) / (stem + "_mask.nii.gz")).string();
  data::NiftiWriteOptions o;
  o.has_affine = true;
  o.affine = scan.ras;
  o.description = "ichseg mask of DICOM series " + scan.series_uid;
  const data::Volume& v = scan.volume;
  data::write_nifti(written, v.nx, v.ny, v.nz, data::kNiftiUint8, mask, o);
  return written;
}

}  // namespace ich::app
