#include "apps/evaluation.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/error.h"

namespace ich::app {

const char* const kEmptyTruthRule =
    "a slice whose truth is empty scores Dice = Jaccard = 1 when nothing is predicted and 0 "
    "otherwise; its sensitivity is undefined (n/a: left out of the statistics and counted as "
    "'undefined'); specificity is undefined only for a truth without background";

namespace {

std::optional<double> ratio(int64_t num, int64_t den) {
  if (den == 0) return std::nullopt;
  return double(num) / double(den);
}

nlohmann::json summary_json(const Summary& s) {
  return {{"mean", s.mean}, {"std", s.std},     {"min", s.min},
          {"max", s.max},   {"count", s.count}, {"undefined", s.undefined}};
}

nlohmann::json optional_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

namespace {

// One pass of a (2r+1)-wide window along the rows or the columns of in (h, w):
// out[i] = 1 when any (grow) or every (shrink) neighbour inside the image is set.
void window_pass(const std::vector<uint8_t>& in, std::vector<uint8_t>& out, int h, int w,
                 int radius, bool along_rows, bool grow) {
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) {
      const int at = along_rows ? c : r, length = along_rows ? w : h;
      // Scanning stops at the first neighbour that decides: a set one when growing, an
      // unset one when shrinking.
      uint8_t v = grow ? 0 : 1;
      for (int d = std::max(0, at - radius);
           d <= std::min(length - 1, at + radius) && (v != 0) != grow; ++d)
        v = along_rows ? in[size_t(r) * w + d] : in[size_t(d) * w + c];
      out[size_t(r) * w + c] = v;
    }
}

// Separable: a square is a row pass then a column pass.
void square_morphology(std::vector<uint8_t>& mask, int h, int w, int radius, bool grow) {
  if (radius <= 0) return;
  std::vector<uint8_t> rows(mask.size());
  window_pass(mask, rows, h, w, radius, true, grow);
  window_pass(rows, mask, h, w, radius, false, grow);
}

}  // namespace

void dilate(std::vector<uint8_t>& mask, int h, int w, int radius) {
  square_morphology(mask, h, w, radius, true);
}

void erode(std::vector<uint8_t>& mask, int h, int w, int radius) {
  square_morphology(mask, h, w, radius, false);
}

SliceScore score_slice(const data::SliceId& id, const float* probability, const float* truth, int h,
                       int w, const EvalOptions& options, std::vector<uint8_t>* predicted) {
  const size_t n = size_t(h) * w;
  std::vector<uint8_t> mask(n);  // (h, w)
  for (size_t i = 0; i < n; ++i) mask[i] = probability[i] >= 0.5f ? 1 : 0;
  if (options.closing > 0) {
    dilate(mask, h, w, options.closing);
    erode(mask, h, w, options.closing);
  }
  if (options.opening > 0) {
    erode(mask, h, w, options.opening);
    dilate(mask, h, w, options.opening);
  }
  SliceScore s;
  s.id = id;
  for (size_t i = 0; i < n; ++i) {
    const bool p = mask[i] != 0, t = truth[i] >= 0.5f;
    s.predicted_pixels += p;
    s.truth_pixels += t;
    if (p && t) ++s.counts.tp;
    if (p && !t) ++s.counts.fp;
    if (!p && t) ++s.counts.fn;
    if (!p && !t) ++s.counts.tn;
  }
  if (predicted) *predicted = std::move(mask);
  return s;
}

std::vector<size_t> pick_display_slices(const data::SliceSource& source, int count) {
  std::vector<size_t> positive, negative;
  data::Image8 mask;
  for (size_t i = 0; i < source.size(); ++i) {
    source.load_mask(i, &mask);
    const bool any =
        std::any_of(mask.pixels.begin(), mask.pixels.end(), [](uint8_t v) { return v != 0; });
    (any ? positive : negative).push_back(i);
  }
  std::vector<size_t> picked;
  for (const auto* group : {&positive, &negative}) {
    const size_t want = std::min(group->size(), size_t(std::max(count, 0)) - picked.size());
    for (size_t k = 0; k < want; ++k) picked.push_back((*group)[k * group->size() / want]);
  }
  std::sort(picked.begin(), picked.end());
  return picked;
}

EvalReport evaluate(const std::vector<SliceScore>& scores, const EvalOptions& options) {
  EvalReport r;
  r.options = options;
  r.slices = scores.size();
  std::vector<double> dice, jaccard;
  std::vector<std::optional<double>> sensitivity, specificity;
  std::map<int, ConfusionCounts> ich_counts;  // patient -> counts over its slices with ICH
  std::map<int, bool> patients;
  for (const SliceScore& s : scores) {
    const SegmentationMetrics m = segmentation_metrics(s.counts);
    dice.push_back(m.dice);
    jaccard.push_back(m.jaccard);
    sensitivity.push_back(m.sensitivity);
    specificity.push_back(m.specificity);
    patients[s.id.patient] |= s.truth_pixels > 0;
    if (s.truth_pixels > 0) {
      ++r.slices_with_ich;
      ich_counts[s.id.patient] += s.counts;
    }
    const bool called = s.predicted_pixels > options.detection_pixels;
    const bool present = s.truth_pixels > 0;
    ConfusionCounts& d = r.ich.detection;
    if (called && present) ++d.tp;
    if (called && !present) ++d.fp;
    if (!called && present) ++d.fn;
    if (!called && !present) ++d.tn;
  }
  r.dice = summarize(dice);
  r.jaccard = summarize(jaccard);
  r.sensitivity = summarize(sensitivity);
  r.specificity = summarize(specificity);
  r.ich.patients = static_cast<int>(patients.size());
  std::vector<double> patient_dice;
  for (const auto& [patient, c] : ich_counts) {
    const double d = double(2 * c.tp) / double(2 * c.tp + c.fp + c.fn);
    r.ich.dice_by_patient.emplace_back(patient, d);
    patient_dice.push_back(d);
  }
  r.ich.patients_with_ich = static_cast<int>(ich_counts.size());
  r.ich.patient_dice = summarize(patient_dice);
  return r;
}

nlohmann::json eval_to_json(const EvalReport& r) {
  nlohmann::json j;
  j["slices"] = r.slices;
  j["slices_with_ich"] = r.slices_with_ich;
  j["table"] = {{"dice", summary_json(r.dice)},
                {"jaccard", summary_json(r.jaccard)},
                {"sensitivity", summary_json(r.sensitivity)},
                {"specificity", summary_json(r.specificity)}};
  j["dice_mean"] = r.dice.mean;
  j["jaccard_mean"] = r.jaccard.mean;
  j["sensitivity_mean"] = r.sensitivity.mean;
  j["specificity_mean"] = r.specificity.mean;
  const ConfusionCounts& d = r.ich.detection;
  nlohmann::json per_patient = nlohmann::json::array();
  for (const auto& [patient, dice] : r.ich.dice_by_patient)
    per_patient.push_back({{"patient", patient}, {"dice", dice}});
  j["ich_protocol"] = {
      {"patients", r.ich.patients},
      {"patients_with_ich", r.ich.patients_with_ich},
      {"patient_dice", summary_json(r.ich.patient_dice)},
      {"dice_by_patient", per_patient},
      {"detection",
       {{"threshold_pixels", r.options.detection_pixels},
        {"tp", d.tp},
        {"fp", d.fp},
        {"fn", d.fn},
        {"tn", d.tn},
        {"sensitivity", optional_json(ratio(d.tp, d.tp + d.fn))},
        {"specificity", optional_json(ratio(d.tn, d.tn + d.fp))},
        {"precision", optional_json(ratio(d.tp, d.tp + d.fp))},
        {"accuracy", optional_json(ratio(d.tp + d.tn, d.tp + d.tn + d.fp + d.fn))}}},
      {"postprocess",
       {{"closing_radius", r.options.closing}, {"opening_radius", r.options.opening}}},
  };
  j["empty_truth_rule"] = kEmptyTruthRule;
  return j;
}

std::string format_eval(const EvalReport& r) {
  std::ostringstream os;
  char line[256];
  os << r.slices << " slices (" << r.slices_with_ich << " with hemorrhage in the truth)\n";
  std::snprintf(line, sizeof line, "%-12s %8s %8s %8s %8s %7s %7s\n", "metric", "mean", "std",
                "min", "max", "images", "n/a");
  os << line;
  const std::pair<const char*, const Summary*> rows[] = {{"Jaccard", &r.jaccard},
                                                         {"Dice", &r.dice},
                                                         {"sensitivity", &r.sensitivity},
                                                         {"specificity", &r.specificity}};
  for (const auto& [name, s] : rows) {
    std::snprintf(line, sizeof line, "%-12s %8.4f %8.4f %8.4f %8.4f %7zu %7zu\n", name, s->mean,
                  s->std, s->min, s->max, s->count, s->undefined);
    os << line;
  }
  const ConfusionCounts& d = r.ich.detection;
  const bool any_ich = r.ich.patients_with_ich > 0;
  os << "ICH protocol: Dice over slices with hemorrhage per patient, mean "
     << format_metric(any_ich ? std::optional<double>(r.ich.patient_dice.mean) : std::nullopt)
     << " (std "
     << format_metric(any_ich ? std::optional<double>(r.ich.patient_dice.std) : std::nullopt)
     << ", " << r.ich.patients_with_ich << " of " << r.ich.patients
     << " patients have hemorrhage)\n";
  os << "slice detection (> " << r.options.detection_pixels << " predicted pixels): sensitivity "
     << format_metric(ratio(d.tp, d.tp + d.fn)) << ", specificity "
     << format_metric(ratio(d.tn, d.tn + d.fp)) << ", precision "
     << format_metric(ratio(d.tp, d.tp + d.fp)) << " (TP " << d.tp << ", FP " << d.fp << ", FN "
     << d.fn << ", TN " << d.tn << ")\n";
  if (r.options.closing || r.options.opening)
    os << "post-processing: closing radius " << r.options.closing << ", opening radius "
       << r.options.opening << "\n";
  os << "empty truth: " << kEmptyTruthRule << "\n";
  return os.str();
}

}  // namespace ich::app
