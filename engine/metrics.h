// Segmentation metrics on host arrays: a prediction (probabilities, foreground where
// p >= 0.5) against a truth mask (foreground where t >= 0.5).
//
// Empty-truth rule (slices without hemorrhage are common, so this is decided here, once):
//   Dice, Jaccard:  both empty -> 1 (a correct "nothing there"); truth empty and
//                   prediction not -> 0 (the formula gives it). Always defined.
//   Sensitivity:    TP / (TP + FN) is undefined when the truth has no foreground; it is
//                   reported as "n/a", left out of means and counted (Summary::undefined).
//   Specificity:    TN / (TN + FP) is undefined when the truth has no background; same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ich {

struct ConfusionCounts {
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
  ConfusionCounts& operator+=(const ConfusionCounts& o) {
    tp += o.tp, fp += o.fp, fn += o.fn, tn += o.tn;
    return *this;
  }
};

// n values of each; threshold 0.5 on both.
ConfusionCounts confusion_counts(const float* prediction, const float* truth, size_t n);

struct SegmentationMetrics {
  double dice = 0.0;
  double jaccard = 0.0;
  std::optional<double> sensitivity;  // nullopt: the truth has no foreground
  std::optional<double> specificity;  // nullopt: the truth has no background
};

SegmentationMetrics segmentation_metrics(const ConfusionCounts& c);
inline SegmentationMetrics segmentation_metrics(const float* prediction, const float* truth,
                                                size_t n) {
  return segmentation_metrics(confusion_counts(prediction, truth, n));
}

// Statistics of one metric over images; undefined values are counted, not averaged.
struct Summary {
  size_t count = 0;                                    // defined values
  size_t undefined = 0;                                // values that were n/a
  double mean = 0.0, std = 0.0, min = 0.0, max = 0.0;  // over defined values; 0 when none
};

Summary summarize(const std::vector<std::optional<double>>& values);
Summary summarize(const std::vector<double>& values);

// "0.8123" or "n/a".
std::string format_metric(const std::optional<double>& value, int digits = 4);

}  // namespace ich
