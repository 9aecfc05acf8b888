// Slice sources and the batch loader: determinism of the batch stream, patches and their
// positive/negative sampling, augmentation, NIfTI source == PNG source, other image folders.
#include <stb_image_write.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "data/augment.h"
#include "data/loader.h"
#include "data/phantom.h"
#include "data/prepare.h"
#include "data/slices.h"
#include "data_test_util.h"

using namespace ich::data;
using Catch::Matchers::Contains;
using ich::test::TempDir;
namespace fs = std::filesystem;

namespace {

// A small synthetic dataset and its prepared form, made once for the whole file.
struct Fixture {
  TempDir dir{"loader"};
  std::string data = dir / "ds";
  std::string prepared = dir / "prep";
  Fixture() {
    SynthOptions so;
    so.patients = 5;
    so.size = 96;
    so.slices = 6;
    so.slice_jitter = 0;
    so.seed = 7;
    write_synthetic_dataset(data, so);
    PrepareOptions po;
    po.data_dir = data;
    po.out_dir = prepared;
    prepare_dataset(po);
  }
};

const Fixture& fixture() {
  static Fixture f;
  return f;
}

std::vector<Batch> epoch_batches(BatchLoader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(&b)) out.push_back(b);
  return out;
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].images != b[i].images || a[i].masks != b[i].masks || a[i].x0 != b[i].x0 ||
        a[i].y0 != b[i].y0)
      return false;
    for (size_t j = 0; j < a[i].ids.size(); ++j)
      if (a[i].ids[j].name != b[i].ids[j].name) return false;
  }
  return true;
}

LoaderOptions augmented_options(uint64_t seed) {
  LoaderOptions o;
  o.batch_size = 4;
  o.patch = 48;
  o.stride = 24;
  o.seed = seed;
  o.augment.flip_horizontal = 0.5;
  o.augment.flip_vertical = 0.5;
  o.augment.rotate_degrees = 15;
  o.augment.elastic_sigma = 3;
  o.augment.noise_std = 0.02;
  return o;
}

}  // namespace

TEST_CASE("loader: the same seed gives the same batch stream, whatever the prefetch", "[data]") {
  std::shared_ptr<const SliceSource> source = open_prepared(fixture().prepared, {"train", false});
  LoaderOptions o = augmented_options(123);
  BatchLoader a(source, o);
  o.prefetch = 1;
  BatchLoader b(source, o);
  const auto ea = epoch_batches(a, 0), eb = epoch_batches(b, 0);
  REQUIRE(ea.size() == a.batches_per_epoch());
  CHECK(same_batches(ea, eb));
  // Epochs differ from each other, and the stream of epoch 1 is reproducible too.
  const auto a1 = epoch_batches(a, 1);
  CHECK_FALSE(same_batches(ea, a1));
  CHECK(same_batches(a1, epoch_batches(b, 1)));
  // Another seed, another stream.
  BatchLoader c(source, augmented_options(124));
  CHECK_FALSE(same_batches(ea, epoch_batches(c, 0)));
  // An epoch abandoned half-way restarts cleanly.
  a.start_epoch(0);
  Batch first;
  REQUIRE(a.next(&first));
  CHECK(same_batches(ea, epoch_batches(a, 0)));
}

TEST_CASE("loader: batch layout, whole slices, values in range", "[data]") {
  std::shared_ptr<const SliceSource> source = open_prepared(fixture().prepared);
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  BatchLoader loader(source, o);
  CHECK(loader.samples_per_epoch() == source->size());
  const auto batches = epoch_batches(loader, 0);
  REQUIRE(batches.size() == (source->size() + 3) / 4);
  const Batch& b = batches[0];
  CHECK(b.n == 4);
  CHECK(b.h == 96);
  CHECK(b.w == 96);
  CHECK(b.images.size() == size_t(4 * 96 * 96));
  // Unshuffled, un-augmented: sample 1 is slice 1 of the source, pixel for pixel.
  Image8 image, mask;
  source->load(1, &image, &mask);
  CHECK(b.ids[1].name == source->id(1).name);
  size_t wrong = 0;
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    wrong += b.images[96 * 96 + i] != image.pixels[i] / 255.0f;
    wrong += b.masks[96 * 96 + i] != float(mask.pixels[i]);
  }
  CHECK(wrong == 0);
  const Batch& last = batches.back();
  CHECK(last.n == int(source->size() - 4 * (batches.size() - 1)));
  o.drop_last = true;
  BatchLoader dropping(source, o);
  CHECK(dropping.batches_per_epoch() == source->size() / 4);
}

TEST_CASE("loader: patches on a stride grid, every positive and the asked share of negatives",
          "[data]") {
  std::shared_ptr<const SliceSource> source = open_prepared(fixture().prepared);
  LoaderOptions o;
  o.batch_size = 8;
  o.patch = 40;
  o.stride = 20;  // 96 px: origins 0, 20, 40 and 56 (the last one flush with the border)
  o.negatives_per_positive = 0.5;
  BatchLoader loader(source, o);
  // Brute force: count positive patches directly.
  size_t positives = 0, total = 0;
  for (size_t s = 0; s < source->size(); ++s) {
    Image8 image, mask;
    source->load(s, &image, &mask);
    for (int y : {0, 20, 40, 56})
      for (int x : {0, 20, 40, 56}) {
        bool any = false;
        for (int r = y; r < y + 40; ++r)
          for (int c = x; c < x + 40; ++c) any |= mask.pixels[r * 96 + c] != 0;
        positives += any;
        ++total;
      }
  }
  REQUIRE(positives > 0);
  CHECK(loader.positive_patches() == positives);
  CHECK(loader.negative_patches() == total - positives);
  CHECK(loader.samples_per_epoch() == positives + size_t(std::llround(0.5 * positives)));
  size_t seen_positive = 0, samples = 0;
  std::set<std::tuple<std::string, int, int>> distinct;
  for (const Batch& b : epoch_batches(loader, 0)) {
    for (int i = 0; i < b.n; ++i) {
      bool any = false;
      for (int p = 0; p < 40 * 40; ++p) any |= b.masks[size_t(i) * 1600 + p] != 0;
      seen_positive += any;
      ++samples;
      distinct.insert({b.ids[i].name, b.x0[i], b.y0[i]});
      CHECK((b.x0[i] == 0 || b.x0[i] == 20 || b.x0[i] == 40 || b.x0[i] == 56));
    }
  }
  CHECK(samples == loader.samples_per_epoch());
  CHECK(distinct.size() == samples);  // no patch twice in an epoch
  CHECK(seen_positive == positives);
}

TEST_CASE("loader: shards take the epoch order by stride, drop the tail, keep each draw",
          "[data]") {
  std::shared_ptr<const SliceSource> source = open_prepared(fixture().prepared, {"train", false});
  LoaderOptions o = augmented_options(55);
  o.batch_size = 1;  // batch k of the whole loader is position k of the epoch
  BatchLoader whole(source, o);
  const auto reference = epoch_batches(whole, 2);
  const size_t n = reference.size();
  const int shards = 3;
  REQUIRE(n % shards != 0);  // so the tail rule is exercised
  o.batch_size = 2;
  o.shards = shards;
  std::set<std::tuple<std::string, int, int>> distinct;
  for (int shard = 0; shard < shards; ++shard) {
    o.shard = shard;
    BatchLoader part(source, o);
    CHECK(part.samples_per_epoch() == n / shards);
    size_t j = 0, wrong = 0;
    for (const Batch& b : epoch_batches(part, 2)) {
      const size_t plane = size_t(b.h) * b.w;
      for (int i = 0; i < b.n; ++i, ++j) {
        // Sample j of shard s is position s + j * shards of the epoch, augmented alike.
        const Batch& r = reference[size_t(shard) + j * shards];
        wrong += r.ids[0].name != b.ids[size_t(i)].name || r.x0[0] != b.x0[size_t(i)] ||
                 r.y0[0] != b.y0[size_t(i)];
        wrong += !std::equal(r.images.begin(), r.images.end(), b.images.begin() + i * plane);
        wrong += !std::equal(r.masks.begin(), r.masks.end(), b.masks.begin() + i * plane);
        distinct.insert({b.ids[size_t(i)].name, b.x0[size_t(i)], b.y0[size_t(i)]});
      }
    }
    CHECK(j == n / shards);
    CHECK(wrong == 0);
  }
  CHECK(distinct.size() == (n / shards) * shards);  // no sample twice in the epoch
  o.shard = shards;
  CHECK_THROWS_AS(BatchLoader(source, o), ich::Error);
}

TEST_CASE("augment: flips are exact mirrors, masks stay binary, noise stays in [0, 1]", "[data]") {
  Image8 image, mask;
  image.w = mask.w = 8;
  image.h = mask.h = 6;
  for (int i = 0; i < 48; ++i) {
    image.pixels.push_back(uint8_t(i * 5));
    mask.pixels.push_back(i % 7 == 0);
  }
  std::vector<float> out(48), out_mask(48);
  AugmentOptions flip;
  flip.flip_horizontal = 1.0;
  Rng rng(1);
  augment_crop(image, mask, 0, 0, 8, 6, flip, rng, out.data(), out_mask.data());
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 8; ++c) {
      CHECK(out[r * 8 + c] == image.pixels[r * 8 + (7 - c)] / 255.0f);
      CHECK(out_mask[r * 8 + c] == float(mask.pixels[r * 8 + (7 - c)]));
    }
  AugmentOptions all;
  all.rotate_degrees = 30;
  all.elastic_sigma = 4;
  all.noise_std = 0.3;
  augment_crop(image, mask, 0, 0, 8, 6, all, rng, out.data(), out_mask.data());
  for (int i = 0; i < 48; ++i) {
    CHECK((out[i] >= 0.0f && out[i] <= 1.0f));
    CHECK((out_mask[i] == 0.0f || out_mask[i] == 1.0f));
  }
}

TEST_CASE("slices: straight from NIfTI gives exactly the prepared PNG pixels", "[data]") {
  CtIchSliceOptions no;
  no.selection.split = "val";
  const auto nifti = open_ctich_slices(fixture().data, no);
  const auto png = open_prepared(fixture().prepared, {"val", false});
  REQUIRE(nifti->size() == png->size());
  for (size_t i = 0; i < png->size(); ++i) {
    Image8 a, am, b, bm;
    nifti->load(i, &a, &am);
    png->load(i, &b, &bm);
    INFO(png->id(i).name);
    CHECK(nifti->id(i).name == png->id(i).name);
    CHECK(a.pixels == b.pixels);
    CHECK(am.pixels == bm.pixels);
  }
  no.selection.split = "!val";
  CHECK(open_ctich_slices(fixture().data, no)->size() + png->size() ==
        open_prepared(fixture().prepared)->size());
  no.selection.split = "fold9";
  CHECK_THROWS_WITH(open_ctich_slices(fixture().data, no), Contains("fold9"));
}

TEST_CASE("slices: any image/mask folder pair in PNG, JPEG or BMP", "[data]") {
  TempDir dir("folders");
  fs::create_directories(dir / "img");
  fs::create_directories(dir / "lab");
  std::vector<uint8_t> rgb(10 * 12 * 3), grey(10 * 12);
  for (size_t i = 0; i < grey.size(); ++i) {
    grey[i] = uint8_t(i * 2);
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i];
  }
  std::vector<uint8_t> mask01(10 * 12, 0);
  mask01[5] = 1;  // a 0/1 mask
  REQUIRE(stbi_write_bmp((dir / "img/case_a.bmp").c_str(), 10, 12, 3, rgb.data()));
  REQUIRE(stbi_write_png((dir / "lab/case_a.png").c_str(), 10, 12, 1, mask01.data(), 10));
  REQUIRE(stbi_write_jpg((dir / "img/case_b.jpg").c_str(), 10, 12, 1, grey.data(), 95));
  REQUIRE(stbi_write_png((dir / "lab/case_b.png").c_str(), 10, 12, 1, mask01.data(), 10));
  ich::test::write_text(dir / "img/readme.txt", "not an image");
  const auto source = open_image_folders(dir / "img", dir / "lab");
  REQUIRE(source->size() == 2);
  Image8 image, mask;
  source->load(0, &image, &mask);
  CHECK(source->id(0).name == "case_a.bmp");
  CHECK(source->id(0).patient == -1);
  CHECK(image.pixels == grey);  // colour converted to grey: equal channels stay the same
  CHECK(mask.pixels == mask01);
  source->load(1, &image, &mask);
  CHECK(image.w == 10);
  CHECK(image.h == 12);
  // A JPEG mask needs a threshold; an image without a mask is named.
  fs::remove(dir / "lab/case_b.png");
  CHECK_THROWS_WITH(open_image_folders(dir / "img", dir / "lab"),
                    Contains("case_b.jpg") && Contains("no mask"));
}

TEST_CASE("loader: an error in the background thread reaches next() naming the file", "[data]") {
  TempDir dir("loader-err");
  fs::copy(fixture().prepared, dir / "p", fs::copy_options::recursive);
  const auto rows = read_manifest(dir / "p/manifest.csv");
  ich::test::write_text(dir / ("p/image/" + rows[5].file), "garbage");
  LoaderOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  BatchLoader loader(open_prepared(dir / "p"), o);
  loader.start_epoch(0);
  Batch b;
  REQUIRE(loader.next(&b));  // slices 0, 1
  REQUIRE(loader.next(&b));  // slices 2, 3
  CHECK_THROWS_WITH(loader.next(&b), Contains(rows[5].file));
}
