#include "data/scan.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "data/nonfinite.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

// The policies and their names on the command line and in prepare.json / config.json.
constexpr std::pair<NonfinitePolicy, const char*> kNonfinitePolicies[] = {
    {NonfinitePolicy::refuse, "refuse"}, {NonfinitePolicy::zero, "zero"},
    {NonfinitePolicy::min, "min"}};

}  // namespace

NonfinitePolicy parse_nonfinite_policy(const std::string& name) {
  for (const auto& [policy, policy_name] : kNonfinitePolicies)
    if (name == policy_name) return policy;
  ICH_FAIL("--nonfinite '" << name << "' is not one of refuse, zero, min");
}

const char* nonfinite_policy_name(NonfinitePolicy policy) {
  for (const auto& [p, policy_name] : kNonfinitePolicies)
    if (p == policy) return policy_name;
  return "refuse";
}

bool is_dicom_path(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

float apply_nonfinite_policy(Volume* v, NonfinitePolicy policy, const std::string& what) {
  if (v->nonfinite == 0) return 0.0f;
  const FiniteStats s = finite_stats(v->values.data(), v->voxels());
  ICH_CHECK(s.finite > 0, what << " has no finite voxel: all " << v->voxels() << " are NaN or Inf");
  ICH_CHECK(policy != NonfinitePolicy::refuse,
            what << " has " << v->nonfinite << " non-finite voxels (NaN or Inf) of " << v->voxels()
                 << "; pass --nonfinite zero (0 HU) or --nonfinite min (the "
                 << "finite minimum, " << s.min << " HU) to replace them");
  const float with = policy == NonfinitePolicy::zero ? 0.0f : static_cast<float>(s.min);
  for (float& x : v->values)
    if (!std::isfinite(x)) x = with;
  return with;
}

const DicomSeries& choose_series(const DicomFolder& folder, const ScanOptions& o) {
  const DicomSeries* chosen = nullptr;
  for (const DicomSeries& s : folder.series) {
    if (std::find(o.series.begin(), o.series.end(), s.uid) == o.series.end()) continue;
    ICH_CHECK(chosen == nullptr, folder.root << " holds two of the series asked for: "
                                             << chosen->uid << " and " << s.uid);
    chosen = &s;
  }
  if (chosen) return *chosen;
  if (!o.series.empty() && o.series_required) return select_dicom_series(folder, o.series[0]);
  return select_dicom_series(folder, "");
}

Scan read_scan(const std::string& path, const ScanOptions& o) {
  Scan scan;
  scan.path = path;
  scan.dicom = is_dicom_path(path);
  std::string what = path;
  if (scan.dicom) {
    const DicomFolder folder = scan_dicom_folder(path);
    const DicomSeries& series = choose_series(folder, o);
    DicomVolume dv = read_dicom_series(series, o.dicom);
    scan.volume = std::move(dv.volume);
    scan.volume.nonfinite = dv.nonfinite;
    scan.series_uid = series.uid;
    scan.series_description = series.description;
    scan.ras = lps_to_ras(dv.stack.lps);
    scan.notes = dv.stack.notes;
    what = path + " (series " + series.uid + ")";
  } else {
    scan.volume = read_nifti(path);
  }
  scan.replaced_with = apply_nonfinite_policy(&scan.volume, o.nonfinite, what);
  return scan;
}

}  // namespace ich::data
