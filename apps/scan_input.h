// The flags of every command that reads CT scans (info, prepare, predict): which DICOM series,
// which of the DICOM checks to relax, and what to do with non-finite voxels (data/scan.h);
// and writing a mask that overlays on the scan it was predicted from.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "data/scan.h"

namespace ich::app {

struct ScanFlags {
  std::vector<std::string> series;
  std::string nonfinite = "refuse";
  bool allow_gantry_tilt = false, allow_missing_slices = false, allow_irregular_spacing = false;

  // with_nonfinite: also --nonfinite (info only reports, and has no use for it).
  void add_to(CLI::App& app, bool with_nonfinite = true);
  // Checked: an unknown --nonfinite is an ich::Error.
  data::ScanOptions options() const;
};

// True for a NIfTI name (.nii, .nii.gz) or a folder (of DICOM files).
bool is_scan_input(const std::string& path);

// "049" for "dir/049.nii.gz" and for the DICOM folder "dir/049/".
std::string scan_stem(const std::string& path);

// The mask (uint8 0/1, the scan's voxel order) of a scan read by data::read_scan, written
// atomically to OUT_DIR/<stem>_mask.nii[.gz] and returned: for NIfTI input with the input's
// header (dims, qform, sform, .gz as the input); for a DICOM series as .nii.gz whose sform and
// qform are the series' voxel -> RAS affine, so the mask overlays on the DICOM in any viewer.
std::string write_scan_mask(const std::string& out_dir, const data::Scan& scan,
                            const uint8_t* mask);

}  // namespace ich::app
