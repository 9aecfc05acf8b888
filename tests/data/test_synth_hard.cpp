// The hard phantom (`ichseg synth --difficulty hard`): fewer slices with blood, bleeds
// smaller and only 10-20 HU over grey matter, partial volume at their edges, and the
// difficulty recorded in synth.json (an easy dataset has none).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "data/phantom.h"
#include "data_test_util.h"

using namespace ich::data;
using ich::test::TempDir;
namespace fs = std::filesystem;

namespace {

SynthOptions hard_synth(int patients, Difficulty d) {
  SynthOptions o;
  o.patients = patients;
  o.size = 96;
  o.slices = 24;
  o.slice_jitter = 2;
  o.seed = 5;
  o.difficulty = d;
  return o;
}

struct BleedStats {
  double slices = 0, slices_with_blood = 0, blood_voxels = 0;
  double blood_hu = 0, grey_hu = 0;  // medians (partial volume with the skull makes the
                                     // mean of extra-axial blood meaningless)
};

double median(std::vector<int16_t> v) {
  REQUIRE(!v.empty());
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

BleedStats stats_of(const SynthOptions& o) {
  BleedStats s;
  std::vector<int16_t> blood, grey;
  for (int p = 1; p <= o.patients; ++p) {
    const PhantomPatient pp = make_phantom_patient(o, p);
    const size_t plane = size_t(pp.nx) * pp.ny;
    for (int k = 0; k < pp.nz; ++k) {
      bool any = false;
      for (size_t i = 0; i < plane; ++i) {
        const size_t idx = k * plane + i;
        if (pp.mask[idx]) {
          any = true;
          ++s.blood_voxels;
          blood.push_back(pp.hu[idx]);
        } else if (pp.tissue[idx] == kTissueGrey) {
          grey.push_back(pp.hu[idx]);
        }
      }
      ++s.slices;
      s.slices_with_blood += any;
    }
  }
  s.blood_hu = median(blood);
  s.grey_hu = median(grey);
  return s;
}

}  // namespace

TEST_CASE("synth hard: fewer, smaller, fainter bleeds than easy", "[data]") {
  const BleedStats easy = stats_of(hard_synth(8, Difficulty::easy));
  const BleedStats hard = stats_of(hard_synth(8, Difficulty::hard));
  const double easy_fraction = easy.slices_with_blood / easy.slices;
  const double hard_fraction = hard.slices_with_blood / hard.slices;
  INFO("slices with blood: easy " << easy_fraction << ", hard " << hard_fraction);
  // CT-ICH: about one slice in eight or nine holds blood.
  CHECK(hard_fraction > 0.05);
  CHECK(hard_fraction < 0.2);
  CHECK(hard_fraction < easy_fraction * 0.7);
  const double easy_size = easy.blood_voxels / easy.slices_with_blood;
  const double hard_size = hard.blood_voxels / hard.slices_with_blood;
  INFO("blood voxels per slice with blood: easy " << easy_size << ", hard " << hard_size);
  CHECK(hard_size < easy_size * 0.5);
  const double easy_contrast = easy.blood_hu - easy.grey_hu;
  const double hard_contrast = hard.blood_hu - hard.grey_hu;
  INFO("blood - grey: easy " << easy_contrast << " HU, hard " << hard_contrast << " HU");
  CHECK(easy_contrast > 25.0);
  // 10-20 HU over grey matter, lowered a little by partial volume at the edges.
  CHECK(hard_contrast > 6.0);
  CHECK(hard_contrast < 20.0);
}

TEST_CASE("synth hard: partial volume blurs a bleed's edge", "[data]") {
  // Without noise (and streaks) grey matter has one value per patient; a grey voxel next to
  // blood is brighter than that only through partial volume, which the easy phantom has not.
  for (Difficulty d : {Difficulty::easy, Difficulty::hard}) {
    SynthOptions o = hard_synth(4, d);
    o.noise_hu = 0;
    int brighter = 0, edges = 0;
    for (int p = 1; p <= o.patients; ++p) {
      const PhantomPatient pp = make_phantom_patient(o, p);
      std::map<int, int> grey_values;
      for (size_t i = 0; i < pp.hu.size(); ++i)
        if (pp.tissue[i] == kTissueGrey) ++grey_values[pp.hu[i]];
      int grey = 0, most = 0;
      for (const auto& [value, count] : grey_values)
        if (count > most) most = count, grey = value;
      for (size_t i = 1; i + 1 < pp.hu.size(); ++i) {
        if (pp.tissue[i] != kTissueGrey || !(pp.mask[i - 1] || pp.mask[i + 1])) continue;
        ++edges;
        brighter += pp.hu[i] > grey + 1;
      }
    }
    INFO(difficulty_name(d) << ": " << brighter << " of " << edges
                            << " grey voxels beside blood are brighter than grey matter");
    CHECK(edges > 0);
    if (d == Difficulty::easy) CHECK(brighter == 0);
    if (d == Difficulty::hard) CHECK(brighter * 6 > edges);
  }
}

TEST_CASE("synth hard: recorded in synth.json, easy writes none, bad names refused", "[data]") {
  TempDir tmp("synth_hard");
  SynthOptions o = hard_synth(2, Difficulty::hard);
  o.slices = 6;
  o.size = 32;
  write_synthetic_dataset(tmp / "hard", o);
  std::ifstream in(fs::path(tmp / "hard") / kSynthMetadataJson);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("\"difficulty\": \"hard\"") != std::string::npos);
  o.difficulty = Difficulty::easy;
  write_synthetic_dataset(tmp / "easy", o);
  CHECK(fs::exists(fs::path(tmp / "easy") / kDiagnosisCsv));
  CHECK_FALSE(fs::exists(fs::path(tmp / "easy") / kSynthMetadataJson));
  CHECK(parse_difficulty("hard") == Difficulty::hard);
  CHECK_THROWS_AS(parse_difficulty("medium"), ich::Error);
}
