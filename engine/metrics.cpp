#include "engine/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ich {

ConfusionCounts confusion_counts(const float* prediction, const float* truth, size_t n) {
  ConfusionCounts c;
  for (size_t i = 0; i < n; ++i) {
    const bool p = prediction[i] >= 0.5f;
    const bool t = truth[i] >= 0.5f;
    if (p && t)
      ++c.tp;
    else if (p)
      ++c.fp;
    else if (t)
      ++c.fn;
    else
      ++c.tn;
  }
  return c;
}

SegmentationMetrics segmentation_metrics(const ConfusionCounts& c) {
  SegmentationMetrics m;
  const int64_t dice_den = 2 * c.tp + c.fp + c.fn;
  const int64_t union_size = c.tp + c.fp + c.fn;
  m.dice = dice_den == 0 ? 1.0 : 2.0 * double(c.tp) / double(dice_den);
  m.jaccard = union_size == 0 ? 1.0 : double(c.tp) / double(union_size);
  if (c.tp + c.fn > 0) m.sensitivity = double(c.tp) / double(c.tp + c.fn);
  if (c.tn + c.fp > 0) m.specificity = double(c.tn) / double(c.tn + c.fp);
  return m;
}

Summary summarize(const std::vector<std::optional<double>>& values) {
  Summary s;
  double total = 0.0;
  for (const auto& v : values) {
    if (!v) {
      ++s.undefined;
      continue;
    }
    if (s.count == 0) s.min = s.max = *v;
    s.min = std::min(s.min, *v);
    s.max = std::max(s.max, *v);
    total += *v;
    ++s.count;
  }
  if (s.count == 0) return s;
  s.mean = total / double(s.count);
  double squares = 0.0;
  for (const auto& v : values) {
    if (v) squares += (*v - s.mean) * (*v - s.mean);
  }
  s.std = std::sqrt(squares / double(s.count));  // population std, as numpy's default
  return s;
}

Summary summarize(const std::vector<double>& values) {
  return summarize(std::vector<std::optional<double>>(values.begin(), values.end()));
}

std::string format_metric(const std::optional<double>& value, int digits) {
  if (!value) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, *value);
  return buf;
}

}  // namespace ich
