// Sources of 2-D training slices: a prepared folder (image/ + label/ + manifest.csv), any
// pair of image/mask folders (PNG, JPEG or BMP; so other 2-D segmentation sets work), or a
// CT-ICH dataset read straight from NIfTI without PNGs. A source hands out 8-bit images
// and 0/1 masks; the loader (data/loader.h) turns them into batches.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/prepare.h"

namespace ich::data {

struct SliceId {
  int patient = -1;  // -1 when the file name does not say (not NNN_SSS.*)
  int slice = -1;    // 1-based
  std::string name;  // file name, e.g. "049_012.png"
};

class SliceSource {
 public:
  virtual ~SliceSource() = default;
  virtual size_t size() const = 0;
  virtual const SliceId& id(size_t i) const = 0;
  // Image (grey 0..255) and mask (0 or 1) of slice i, same size. Safe from any thread.
  virtual void load(size_t i, Image8* image, Image8* mask) const = 0;
  // The mask alone (the loader scans all masks once to find positive patches).
  virtual void load_mask(size_t i, Image8* mask) const;
};

// Which slices of a prepared folder or a CT-ICH dataset to use.
//   split: "" or "all" every slice; "train", "val", "foldK" the slices of that split;
//          "!foldK" (or "!val", ...) every slice not in it, e.g. the training side of fold K.
struct SliceSelection {
  std::string split;
  bool only_hemorrhage = false;  // slices whose mask is not empty
};

// A folder written by `ichseg prepare`. Masks are binarised as value > 0.
std::unique_ptr<SliceSource> open_prepared(const std::string& dir,
                                           const SliceSelection& selection = {});

// Every PNG/JPEG/BMP image in image_dir with a mask of the same name (or the same stem with
// another of those extensions) in label_dir. Mask pixels > mask_threshold are 1 (0 for 0/1
// or 0/255 masks; about 127 for JPEG masks, whose edges are noisy).
std::unique_ptr<SliceSource> open_image_folders(const std::string& image_dir,
                                                const std::string& label_dir,
                                                int mask_threshold = 0);

// A CT-ICH dataset straight from NIfTI: every selected slice windowed exactly as `prepare`
// writes it (so the two give the same pixels), held in memory as 8 bits per pixel.
struct CtIchSliceOptions {
  float wl = 40.0f, ww = 120.0f;
  SplitOptions split;  // how patients are split; the same options as prepare's
  SliceSelection selection;
  ScanOptions scan;  // DICOM series and checks, non-finite voxels (data/scan.h)
};
std::unique_ptr<SliceSource> open_ctich_slices(const std::string& dir,
                                               const CtIchSliceOptions& options = {});

// True when a split name ("train", "fold2") is selected by selection.split.
bool split_selected(const std::string& split_of_slice, const std::string& selection);

}  // namespace ich::data
