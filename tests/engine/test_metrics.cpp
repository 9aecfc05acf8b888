// Metrics: values on known masks and the documented empty-truth rule.
#include <catch2/catch.hpp>

#include "engine/metrics.h"

using namespace ich;

TEST_CASE("metrics: Dice, Jaccard, sensitivity, specificity on a known case", "[metrics]") {
  // truth 1 1 1 0 0 0 0 0, prediction 1 1 0 1 0 0 0 0 (probabilities around 0.5)
  const std::vector<float> truth{1, 1, 1, 0, 0, 0, 0, 0};
  const std::vector<float> pred{0.9f, 0.5f, 0.49f, 0.7f, 0.1f, 0, 0, 0.2f};
  const ConfusionCounts c = confusion_counts(pred.data(), truth.data(), truth.size());
  CHECK(c.tp == 2);
  CHECK(c.fn == 1);
  CHECK(c.fp == 1);
  CHECK(c.tn == 4);
  const SegmentationMetrics m = segmentation_metrics(c);
  CHECK(m.dice == Approx(4.0 / 6.0));
  CHECK(m.jaccard == Approx(2.0 / 4.0));
  CHECK(*m.sensitivity == Approx(2.0 / 3.0));
  CHECK(*m.specificity == Approx(4.0 / 5.0));
}

TEST_CASE("metrics: the empty-truth rule", "[metrics]") {
  const std::vector<float> empty(6, 0.0f);
  std::vector<float> one_pixel(6, 0.0f);
  one_pixel[2] = 1.0f;
  const SegmentationMetrics both_empty = segmentation_metrics(empty.data(), empty.data(), 6);
  CHECK(both_empty.dice == 1.0);
  CHECK(both_empty.jaccard == 1.0);
  CHECK_FALSE(both_empty.sensitivity.has_value());
  CHECK(*both_empty.specificity == 1.0);
  const SegmentationMetrics false_alarm = segmentation_metrics(one_pixel.data(), empty.data(), 6);
  CHECK(false_alarm.dice == 0.0);
  CHECK(false_alarm.jaccard == 0.0);
  CHECK_FALSE(false_alarm.sensitivity.has_value());
  CHECK(*false_alarm.specificity == Approx(5.0 / 6.0));
  const std::vector<float> all(6, 1.0f);
  CHECK_FALSE(segmentation_metrics(all.data(), all.data(), 6).specificity.has_value());
  CHECK(format_metric(false_alarm.sensitivity) == "n/a");
  CHECK(format_metric(0.81234, 3) == "0.812");
}

TEST_CASE("metrics: summaries leave undefined values out and count them", "[metrics]") {
  const Summary s = summarize(std::vector<std::optional<double>>{0.5, std::nullopt, 1.0, 0.0});
  CHECK(s.count == 3);
  CHECK(s.undefined == 1);
  CHECK(s.mean == Approx(0.5));
  CHECK(s.min == 0.0);
  CHECK(s.max == 1.0);
  CHECK(s.std == Approx(std::sqrt(1.0 / 6.0)));
  const Summary none = summarize(std::vector<std::optional<double>>{std::nullopt});
  CHECK(none.count == 0);
  CHECK(none.undefined == 1);
  CHECK(none.mean == 0.0);
}
