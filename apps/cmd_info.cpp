// ichseg info INPUT... [--json]: what a NIfTI file or a folder of DICOM files holds, checked
// before training (like nib-ls / fslinfo / dcm2niix -l): dims, datatype, spacing, the count
// of non-finite voxels and min/max/mean over the finite ones; for DICOM, every series
// (UID, description, slices, size, spacing, orientation) and why one would be refused.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "apps/scan_input.h"
#include "core/error.h"
#include "data/dicom.h"
#include "data/dicom_parse.h"
#include "data/nifti.h"
#include "data/nonfinite.h"

namespace {

using ich::data::FiniteStats;

// JSON has no NaN: a volume without finite voxels reports null.
nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

void put_stats(nlohmann::json& j, const FiniteStats& s) {
  j["nonfinite"] = s.nonfinite;
  j["min"] = number_or_null(s.min);
  j["max"] = number_or_null(s.max);
  j["mean"] = number_or_null(s.mean);
}

std::string stats_text(const FiniteStats& s) {
  char buf[160];
  if (s.finite == 0) {
    std::snprintf(buf, sizeof buf, "no finite voxel (%lld non-finite)",
                  static_cast<long long>(s.nonfinite));
  } else {
    std::snprintf(buf, sizeof buf, "min %g, max %g, mean %.4f%s", s.min, s.max, s.mean,
                  s.nonfinite ? (", " + std::to_string(s.nonfinite) +
                                 " non-finite voxels (NaN/Inf; left out of min/max/mean)")
                                    .c_str()
                              : "");
  }
  return buf;
}

void info_nifti(const std::string& path, bool json) {
  const ich::data::NiftiHeader h = ich::data::read_nifti_header(path);
  const ich::data::Volume v = ich::data::read_nifti(path);
  const FiniteStats s = ich::data::finite_stats(v.values.data(), v.voxels());
  const char* type = ich::data::nifti_datatype_name(h.datatype);
  if (json) {
    nlohmann::json j;
    j["file"] = path;
    j["format"] = "nifti";
    j["version"] = h.version;
    j["dims"] = {h.nx, h.ny, h.nz};
    j["datatype"] = type;
    j["spacing"] = {h.spacing[0], h.spacing[1], h.spacing[2]};
    j["scl_slope"] = h.scl_slope;
    j["scl_inter"] = h.scl_inter;
    put_stats(j, s);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s: NIfTI-%d%s, %s, %lldx%lldx%lld, spacing %gx%gx%g mm, scaling %g/%g, %s\n",
                path.c_str(), h.version, h.gzipped ? " (gzip)" : "", type, (long long)h.nx,
                (long long)h.ny, (long long)h.nz, h.spacing[0], h.spacing[1], h.spacing[2],
                h.scl_slope, h.scl_inter, stats_text(s).c_str());
  }
}

// Every series of the folder (or those of --series), each read with the checks as given.
void info_dicom(const std::string& dir, const ich::data::ScanOptions& o, bool json) {
  const ich::data::DicomFolder f = ich::data::scan_dicom_folder(dir);
  if (!json) {
    std::printf("%s: %d DICOM files in %zu series%s\n", dir.c_str(), f.dicom_files, f.series.size(),
                f.ignored.empty() ? ""
                                  : (", " + std::to_string(f.ignored.size()) +
                                     " other files ignored (first: " + f.ignored[0].path + ")")
                                        .c_str());
  }
  for (const ich::data::DicomSeries& s : f.series) {
    if (!o.series.empty() && std::find(o.series.begin(), o.series.end(), s.uid) == o.series.end())
      continue;
    nlohmann::json j;
    j["file"] = dir;
    j["format"] = "dicom";
    j["series_uid"] = s.uid;
    j["description"] = s.description;
    j["modality"] = s.modality;
    j["series_number"] = s.series_number;
    j["files"] = s.slices.size();
    std::string read_line;
    try {
      const ich::data::DicomVolume dv = ich::data::read_dicom_series(s, o.dicom);
      const ich::data::DicomStack& st = dv.stack;
      const FiniteStats stats =
          ich::data::finite_stats(dv.volume.values.data(), dv.volume.voxels());
      j["dims"] = {st.nx, st.ny, st.nz};
      j["datatype"] = ich::data::nifti_datatype_name(dv.volume.datatype);
      j["spacing"] = {st.spacing[0], st.spacing[1], st.spacing[2]};
      j["orientation"] = ich::data::dicom_orientation_name(st.normal);
      j["notes"] = st.notes;
      put_stats(j, stats);
      read_line = "HU " + stats_text(stats);
      for (const std::string& note : st.notes) read_line += "; note: " + note;
    } catch (const ich::Error& e) {
      j["refused"] = ich::data::error_message(e);
      read_line = "not read: " + ich::data::error_message(e);
    }
    if (json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("  %s\n    %s\n", ich::data::describe_dicom_series(s).c_str(), read_line.c_str());
    }
  }
}

int run_info(int argc, char** argv) {
  CLI::App app{
      "Print dims, datatype, spacing, non-finite count and min/max/mean of NIfTI files, and the "
      "series of DICOM folders",
      "ichseg info"};
  std::vector<std::string> inputs;
  bool json = false;
  ich::app::ScanFlags scan;
  app.add_option("inputs", inputs, "NIfTI-1 or NIfTI-2 files, or folders of DICOM files")
      ->required();
  app.add_flag("--json", json,
               "one JSON object per file or DICOM series (keys: file, format, dims, datatype, "
               "spacing, nonfinite, min, max, mean; for DICOM also series_uid, description, "
               "modality, files, orientation, notes, refused)");
  scan.add_to(app, false);
  if (const int code = ich::app::parse_command_line(app, argc, argv); code >= 0) return code;
  const ich::data::ScanOptions options = scan.options();
  int failures = 0;
  for (const std::string& path : inputs) {
    try {
      if (ich::data::is_dicom_path(path)) {
        info_dicom(path, options, json);
      } else {
        info_nifti(path, json);
      }
      std::fflush(stdout);
    } catch (const ich::Error& e) {
      std::fprintf(stderr, "ichseg info: error: %s\n", e.what());
      ++failures;
    }
  }
  return failures ? 1 : 0;
}

}  // namespace

ICH_COMMAND("info", "dims, datatype, spacing and value range of NIfTI files and DICOM series",
            run_info);
