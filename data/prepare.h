// `ichseg prepare`: CT-ICH volumes -> windowed 8-bit PNG slices and masks, and a manifest.
//
//   OUT/image/NNN_SSS.png   the slice windowed to 8 bits: round(255 * clamp((HU - (WL - WW/2)) /
//   WW, 0, 1)) OUT/label/NNN_SSS.png   its mask, 0 or 255, same file name OUT/manifest.csv
//   file,patient,slice,has_ich,subtypes,split
//   OUT/prepare.json        how it was made: window, --nonfinite policy, DICOM series and
//                           checks, and per patient its scan, series and non-finite count
// NNN is the patient number, SSS the 1-based slice number. has_ich comes from the mask (any
// voxel > 0); subtypes from the diagnosis CSV ("IPH+SDH", empty when none or not listed).
// The split is by patient, never by slice: "train"/"val" (a seeded shuffle of the patients,
// the first round((1 - val_fraction) * n) train), or with folds = k, "fold0".."fold<k-1>"
// (the shuffled patients dealt round-robin).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/scan.h"

namespace ich::data {

struct SplitOptions {
  uint64_t seed = 0;
  double val_fraction = 0.2;  // used when folds == 0
  int folds = 0;              // 0: train/val; k >= 2: k folds
};

// The split name of each patient ("train", "val", or "foldK").
std::map<int, std::string> assign_splits(std::vector<int> patients, const SplitOptions& options);

constexpr const char* kManifestCsv = "manifest.csv";
constexpr const char* kPrepareJson = "prepare.json";

struct PrepareOptions {
  std::string data_dir;
  std::string out_dir;
  float wl = 40.0f;
  float ww = 120.0f;
  bool only_hemorrhage = false;  // write only slices whose mask is not empty
  SplitOptions split;
  int threads = 0;   // slices written in parallel; 0: one per core (at most 8)
  ScanOptions scan;  // DICOM series choice and checks, non-finite voxels (data/scan.h)
};

struct PrepareSummary {
  int patients = 0;
  int slices = 0;  // PNG pairs written
  int slices_with_ich = 0;
  int slices_skipped = 0;  // left out by only_hemorrhage
  int64_t nonfinite = 0;   // non-finite voxels replaced, all patients together
};

// Runs the whole preparation into a staging folder next to out_dir and moves it into place
// when complete; on any error nothing is left behind.
PrepareSummary prepare_dataset(const PrepareOptions& options);

// "049_012.png"
std::string slice_file_name(int patient, int slice);

struct ManifestRow {
  std::string file;
  int patient = 0;
  int slice = 0;
  bool has_ich = false;
  std::string subtypes;
  std::string split;
};
std::vector<ManifestRow> read_manifest(const std::string& path);

}  // namespace ich::data
