// One CT scan as the commands take it: a NIfTI file (.nii, .nii.gz) or a folder of DICOM files
// (data/dicom.h), read into HU with its non-finite voxels handled by an explicit choice.
//
//   ScanOptions o;                       // series, allow_* of the DICOM checks, --nonfinite
//   Scan s = read_scan(path, o);         // s.volume: HU, (nz, ny, nx); s.ras for DICOM
//
// A path that is a folder is a DICOM folder; anything else is read as NIfTI. `ichseg info`,
// `prepare`, `train` (on a CT-ICH folder) and `predict` all read through here, so the same
// input gives the same HU in each.
//
// Non-finite voxels (NaN, Inf; only float NIfTI and float DICOM pixel data can hold them) are
// counted as read, before anything changes them. Then, by NonfinitePolicy:
//   refuse  (the default) an ich::Error naming the file and the count;
//   zero    each one becomes 0 HU (what nifti_clib's loader does silently: brain-like tissue);
//   min     each one becomes the volume's finite minimum (air, in a head CT).
// A volume without any finite voxel cannot take `min` and is refused under every policy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dicom.h"
#include "data/geometry.h"
#include "data/nifti.h"

namespace ich::data {

enum class NonfinitePolicy { refuse, zero, min };

// "refuse", "zero", "min" <-> the policy; anything else is an ich::Error listing the three.
NonfinitePolicy parse_nonfinite_policy(const std::string& name);
const char* nonfinite_policy_name(NonfinitePolicy policy);

struct ScanOptions {
  // DICOM folders holding several series: the series to read, by SeriesInstanceUID. A folder
  // holding exactly one of these UIDs reads that series; holding none, it reads its only (CT)
  // series when series_required is false, and is an error listing its series when true; one
  // holding two of them is an error. Empty: the only (CT) series (data/dicom.h).
  std::vector<std::string> series;
  bool series_required = false;
  DicomReadOptions dicom;  // allow_gantry_tilt, allow_missing_slices, allow_irregular_spacing
  NonfinitePolicy nonfinite = NonfinitePolicy::refuse;
};

struct Scan {
  std::string path;  // the file or the folder
  bool dicom = false;
  Volume volume;  // HU, non-finite voxels replaced by the policy (volume.nonfinite: the count)
  float replaced_with = 0;  // the value non-finite voxels became (when volume.nonfinite > 0)
  // DICOM only: the series read, and voxel -> RAS mm (lps_to_ras of the series' affine), so
  // that a NIfTI written with it overlays on the scan.
  std::string series_uid, series_description;
  Affine ras;
  std::vector<std::string> notes;  // what an allow_* option did (data/dicom.h)
};

// True when path is a folder (read as DICOM).
bool is_dicom_path(const std::string& path);

Scan read_scan(const std::string& path, const ScanOptions& options = {});

// The series of a scanned folder that options select (the rule above).
const DicomSeries& choose_series(const DicomFolder& folder, const ScanOptions& options);

// Applies options.nonfinite to a volume whose voxels have been counted (volume->nonfinite);
// `what` names the file in the error. Returns the value the non-finite voxels became.
float apply_nonfinite_policy(Volume* volume, NonfinitePolicy policy, const std::string& what);

}  // namespace ich::data
