// ichseg info FILE... [--json]: what a NIfTI file holds, checked before training
// (like nib-ls / fslinfo): dims, datatype, spacing, and min/max/mean of the scaled values.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "core/error.h"
#include "data/nifti.h"

namespace {

struct Stats {
  double min = 0, max = 0, mean = 0;
};

Stats stats_of(const ich::data::Volume& v) {
  Stats s;
  if (v.values.empty()) return s;
  s.min = s.max = v.values[0];
  double sum = 0;
  for (float x : v.values) {
    s.min = std::min<double>(s.min, x);
    s.max = std::max<double>(s.max, x);
    sum += x;
  }
  s.mean = sum / double(v.values.size());
  return s;
}

int run_info(int argc, char** argv) {
  CLI::App app{"Print dims, datatype, spacing and min/max/mean of NIfTI files (.nii, .nii.gz)",
               "ichseg info"};
  std::vector<std::string> files;
  bool json = false;
  app.add_option("files", files, "NIfTI-1 or NIfTI-2 files")->required();
  app.add_flag("--json", json,
               "one JSON object per file (keys: file, dims, datatype, spacing, min, max, mean)");
  if (const int code = ich::app::parse_command_line(app, argc, argv); code >= 0) return code;
  int failures = 0;
  for (const std::string& path : files) {
    try {
      const ich::data::NiftiHeader h = ich::data::read_nifti_header(path);
      const ich::data::Volume v = ich::data::read_nifti(path);
      const Stats s = stats_of(v);
      const char* type = ich::data::nifti_datatype_name(h.datatype);
      if (json) {
        nlohmann::json j;
        j["file"] = path;
        j["version"] = h.version;
        j["dims"] = {h.nx, h.ny, h.nz};
        j["datatype"] = type;
        j["spacing"] = {h.spacing[0], h.spacing[1], h.spacing[2]};
        j["scl_slope"] = h.scl_slope;
        j["scl_inter"] = h.scl_inter;
        j["min"] = s.min;
        j["max"] = s.max;
        j["mean"] = s.mean;
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf(
            "%s: NIfTI-%d%s, %s, %lldx%lldx%lld, spacing %gx%gx%g mm, scaling %g/%g, "
            "min %g, max %g, mean %.4f\n",
            path.c_str(), h.version, h.gzipped ? " (gzip)" : "", type, (long long)h.nx,
            (long long)h.ny, (long long)h.nz, h.spacing[0], h.spacing[1], h.spacing[2], h.scl_slope,
            h.scl_inter, s.min, s.max, s.mean);
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

ICH_COMMAND("info", "print dims, datatype, spacing and value range of NIfTI files", run_info);
