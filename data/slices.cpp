#include "data/slices.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "data/ctich.h"
#include "data/fileutil.h"
#include "data/window.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

bool is_image_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const char* ext : {".png", ".jpg", ".jpeg", ".bmp"}) {
    const size_t n = std::strlen(ext);
    if (lower.size() > n && lower.compare(lower.size() - n, n, ext) == 0) return true;
  }
  return false;
}

std::string stem_of(const std::string& name) {
  return fs::path(name).stem().string();
}

// "049_012.png" -> patient 49, slice 12.
void parse_slice_name(const std::string& name, SliceId* id) {
  int patient = -1, slice = -1;
  char rest[8] = {0};
  if (std::sscanf(name.c_str(), "%d_%d.%7s", &patient, &slice, rest) == 3) {
    id->patient = patient;
    id->slice = slice;
  }
}

void binarise(Image8* mask, int threshold) {
  for (uint8_t& p : mask->pixels) p = p > threshold ? 1 : 0;
}

// Slices stored as files: image_paths[i] and mask_paths[i].
class FileSliceSource final : public SliceSource {
 public:
  FileSliceSource(std::vector<SliceId> ids, std::vector<std::string> images,
                  std::vector<std::string> masks, int threshold)
      : ids_(std::move(ids)),
        images_(std::move(images)),
        masks_(std::move(masks)),
        threshold_(threshold) {}

  size_t size() const override { return ids_.size(); }
  const SliceId& id(size_t i) const override { return ids_[i]; }
  void load(size_t i, Image8* image, Image8* mask) const override {
    *image = read_image(images_[i]);
    load_mask(i, mask);
    ICH_CHECK(image->w == mask->w && image->h == mask->h,
              masks_[i] << " is " << mask->w << "x" << mask->h << " but " << images_[i] << " is "
                        << image->w << "x" << image->h);
  }
  void load_mask(size_t i, Image8* mask) const override {
    *mask = read_image(masks_[i]);
    binarise(mask, threshold_);
  }

 private:
  std::vector<SliceId> ids_;
  std::vector<std::string> images_, masks_;
  int threshold_;
};

// Slices held in memory (8-bit windowed image, 0/1 mask).
class MemorySliceSource final : public SliceSource {
 public:
  std::vector<SliceId> ids;
  std::vector<Image8> images, masks;

  size_t size() const override { return ids.size(); }
  const SliceId& id(size_t i) const override { return ids[i]; }
  void load(size_t i, Image8* image, Image8* mask) const override {
    *image = images[i];
    *mask = masks[i];
  }
  void load_mask(size_t i, Image8* mask) const override { *mask = masks[i]; }
};

}  // namespace

void SliceSource::load_mask(size_t i, Image8* mask) const {
  Image8 image;
  load(i, &image, mask);
}

bool split_selected(const std::string& split_of_slice, const std::string& selection) {
  if (selection.empty() || selection == "all") return true;
  if (selection[0] == '!') return split_of_slice != selection.substr(1);
  return split_of_slice == selection;
}

std::unique_ptr<SliceSource> open_prepared(const std::string& dir,
                                           const SliceSelection& selection) {
  const std::string manifest_path = (fs::path(dir) / kManifestCsv).string();
  std::error_code ec;
  ICH_CHECK(fs::is_regular_file(manifest_path, ec), dir << " is not a prepared folder: it has no "
                                                        << kManifestCsv << " (run ichseg prepare)");
  const std::vector<ManifestRow> rows = read_manifest(manifest_path);
  std::vector<SliceId> ids;
  std::vector<std::string> images, masks;
  bool split_seen = selection.split.empty() || selection.split == "all";
  for (const ManifestRow& r : rows) {
    const std::string wanted = selection.split.empty() || selection.split[0] != '!'
                                   ? selection.split
                                   : selection.split.substr(1);
    split_seen |= r.split == wanted;
    if (!split_selected(r.split, selection.split)) continue;
    if (selection.only_hemorrhage && !r.has_ich) continue;
    ids.push_back({r.patient, r.slice, r.file});
    images.push_back((fs::path(dir) / "image" / r.file).string());
    masks.push_back((fs::path(dir) / "label" / r.file).string());
    ICH_CHECK(fs::is_regular_file(images.back(), ec),
              manifest_path << " lists " << r.file << ", but " << images.back() << " is missing");
    ICH_CHECK(fs::is_regular_file(masks.back(), ec),
              manifest_path << " lists " << r.file << ", but " << masks.back() << " is missing");
  }
  ICH_CHECK(split_seen, manifest_path << " has no split named '" << selection.split
                                      << "' (its splits are train/val or fold0..foldK-1)");
  ICH_CHECK(!ids.empty(), manifest_path << " selects no slices (split '" << selection.split << "'"
                                        << (selection.only_hemorrhage ? ", hemorrhage only" : "")
                                        << ")");
  return std::make_unique<FileSliceSource>(std::move(ids), std::move(images), std::move(masks), 0);
}

std::unique_ptr<SliceSource> open_image_folders(const std::string& image_dir,
                                                const std::string& label_dir, int mask_threshold) {
  ICH_CHECK(mask_threshold >= 0 && mask_threshold < 255,
            "mask threshold " << mask_threshold << " is not in 0..254");
  const std::vector<std::string> image_names = list_files(image_dir);
  const std::vector<std::string> label_names = list_files(label_dir);
  std::map<std::string, std::string> label_by_stem;
  for (const std::string& n : label_names) {
    if (is_image_name(n)) label_by_stem.emplace(stem_of(n), n);
  }
  std::vector<SliceId> ids;
  std::vector<std::string> images, masks;
  for (const std::string& n : image_names) {
    if (!is_image_name(n)) continue;
    std::string label = n;
    if (!std::binary_search(label_names.begin(), label_names.end(), n)) {
      auto it = label_by_stem.find(stem_of(n));
      ICH_CHECK(it != label_by_stem.end(), (fs::path(image_dir) / n).string()
                                               << " has no mask in " << label_dir << " (expected "
                                               << n << ")");
      label = it->second;
    }
    SliceId id;
    id.name = n;
    parse_slice_name(n, &id);
    ids.push_back(id);
    images.push_back((fs::path(image_dir) / n).string());
    masks.push_back((fs::path(label_dir) / label).string());
  }
  ICH_CHECK(!ids.empty(), image_dir << " holds no PNG, JPEG or BMP images");
  return std::make_unique<FileSliceSource>(std::move(ids), std::move(images), std::move(masks),
                                           mask_threshold);
}

std::unique_ptr<SliceSource> open_ctich_slices(const std::string& dir, const CtIchSliceOptions& o) {
  check_window(o.wl, o.ww);
  const CtIchDataset ds = open_ctich(dir, o.scan);
  std::vector<int> numbers;
  for (const PatientFiles& p : ds.patients) numbers.push_back(p.patient);
  const std::map<int, std::string> split = assign_splits(numbers, o.split);
  bool split_seen = o.selection.split.empty() || o.selection.split == "all";
  auto source = std::make_unique<MemorySliceSource>();
  for (const PatientFiles& files : ds.patients) {
    const std::string& s = split.at(files.patient);
    split_seen |= s == (o.selection.split.empty() || o.selection.split[0] != '!'
                            ? o.selection.split
                            : o.selection.split.substr(1));
    if (!split_selected(s, o.selection.split)) continue;
    const PatientVolumes pv = load_patient(files, o.scan);
    const size_t plane = size_t(pv.scan.nx) * pv.scan.ny;
    for (int k = 0; k < pv.scan.nz; ++k) {
      const uint8_t* m = pv.mask.data() + k * plane;
      if (o.selection.only_hemorrhage &&
          std::none_of(m, m + plane, [](uint8_t v) { return v != 0; }))
        continue;
      Image8 image, mask;
      image.w = mask.w = pv.scan.nx;
      image.h = mask.h = pv.scan.ny;
      image.pixels.resize(plane);
      window_to_u8(pv.scan.slice(k), static_cast<int64_t>(plane), o.wl, o.ww, image.pixels.data());
      mask.pixels.assign(m, m + plane);
      source->ids.push_back({files.patient, k + 1, slice_file_name(files.patient, k + 1)});
      source->images.push_back(std::move(image));
      source->masks.push_back(std::move(mask));
    }
  }
  ICH_CHECK(split_seen, dir << ": no patient falls in split '" << o.selection.split << "'");
  ICH_CHECK(!source->ids.empty(), dir << " gives no slices for split '" << o.selection.split << "'"
                                      << (o.selection.only_hemorrhage ? " with hemorrhage" : ""));
  return source;
}

}  // namespace ich::data
