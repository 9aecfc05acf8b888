// Scoring predicted masks against the truth, the two ways the papers report it.
//
// The seed paper's table: Jaccard, Dice, sensitivity and specificity of every image, with
// their mean, std, min and max (engine/metrics.h; its empty-truth rule is kEmptyTruthRule).
//
// The ICH paper's protocol:
//   - segmentation: per patient, Dice over the pixels of that patient's slices with
//     hemorrhage in the truth (2 TP / (2 TP + FP + FN) summed over those slices), then the
//     mean over patients that have such slices;
//   - detection: a slice is called positive when more than detection_pixels pixels are
//     predicted (after post-processing); sensitivity, specificity, precision and accuracy of
//     those calls against "the truth mask is not empty".
// Optional post-processing of the binary prediction before any scoring: a closing, then an
// opening, each with a (2r+1) x (2r+1) square.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/slices.h"
#include "engine/metrics.h"

namespace ich::app {

extern const char* const kEmptyTruthRule;

struct EvalOptions {
  int detection_pixels = 400;
  int closing = 0;  // radius in pixels; 0 = none
  int opening = 0;
};

// What is kept of one scored slice (the probabilities themselves are not).
struct SliceScore {
  data::SliceId id;
  ConfusionCounts counts;
  int64_t predicted_pixels = 0;
  int64_t truth_pixels = 0;
};

// Binarises probability (h, w) at 0.5, applies the post-processing, and writes the mask
// (0/1) to `predicted` when non-null; returns the counts against truth (h, w) in {0, 1}.
SliceScore score_slice(const data::SliceId& id, const float* probability, const float* truth, int h,
                       int w, const EvalOptions& options,
                       std::vector<uint8_t>* predicted = nullptr);

// Binary morphology with a (2r+1)^2 square; pixels outside the image are ignored (so the
// border neither grows nor shrinks a mask by itself). mask (h, w) 0/1, in place.
void dilate(std::vector<uint8_t>& mask, int h, int w, int radius);
void erode(std::vector<uint8_t>& mask, int h, int w, int radius);

struct IchProtocol {
  int patients = 0;           // patients with at least one slice scored
  int patients_with_ich = 0;  // of those, with hemorrhage in the truth
  Summary patient_dice;       // over patients_with_ich
  std::vector<std::pair<int, double>> dice_by_patient;
  ConfusionCounts detection;  // slice-level calls vs truth
};

struct EvalReport {
  size_t slices = 0;
  size_t slices_with_ich = 0;
  Summary dice, jaccard, sensitivity, specificity;
  IchProtocol ich;
  EvalOptions options;
};

// Slices to show as pictures: up to `count` indices of `source`, spread evenly over the
// slices with hemorrhage, topped up with slices without when there are too few; sorted.
std::vector<size_t> pick_display_slices(const data::SliceSource& source, int count);

EvalReport evaluate(const std::vector<SliceScore>& scores, const EvalOptions& options);

// {"table": {"dice": {"mean", "std", "min", "max", "count", "undefined"}, ...}, "dice_mean",
//  "jaccard_mean", "sensitivity_mean", "specificity_mean", "ich_protocol": {...},
//  "empty_truth_rule": "..."}
nlohmann::json eval_to_json(const EvalReport& report);
// The table and the protocol as text for a terminal.
std::string format_eval(const EvalReport& report);

}  // namespace ich::app
