// Losses over all n elements of p (probabilities) and t (targets in [0, 1]).
//
// Soft Dice (medicaltorch's global form, negative):
//   I = sum p t, U = sum p + sum t, loss = -(2 I + s) / (U + s)
//   dloss/dp_i = -2 t_i / (U + s) + (2 I + s) / (U + s)^2
// Mean BCE (PyTorch's binary_cross_entropy, mean reduction):
//   loss = mean((t - 1) max(log1p(-p), -100) - t max(log p, -100))
//   dloss/dp_i = (p - t) / max(p (1 - p), 1e-12) / n
// Global sums are chunked as in elementwise.cpp (double partials in chunk order), so the
// result is the same for any number of threads.
#include <algorithm>
#include <cmath>

#include "core/ceil_div.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::soft_dice_forward(const float* p, const float* t, int64_t n, float smooth,
                                   float* stats, float* loss) {
  ICH_PROFILE_SCOPE("soft_dice_forward");
  checks::soft_dice_forward(p, t, n, stats, loss);
  const int64_t chunk = cpu::sum_chunk_size(n);
  const int chunks = static_cast<int>(ceil_div(n, chunk));
  double intersection_part[cpu::kMaxSumChunks];
  double union_part[cpu::kMaxSumChunks];
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int ci = 0; ci < chunks; ++ci) {
    const int64_t begin = int64_t(ci) * chunk;
    const int64_t end = std::min(begin + chunk, n);
    double inter = 0.0, uni = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      inter += double(p[i]) * double(t[i]);
      uni += double(p[i]) + double(t[i]);
    }
    intersection_part[ci] = inter;
    union_part[ci] = uni;
  }
  double intersection = 0.0, union_sum = 0.0;
  for (int ci = 0; ci < chunks; ++ci) {
    intersection += intersection_part[ci];
    union_sum += union_part[ci];
  }
  stats[0] = static_cast<float>(intersection);
  stats[1] = static_cast<float>(union_sum);
  const double denominator = union_sum + double(smooth);
  ICH_CHECK(denominator != 0.0,
            "soft_dice_forward: sum(p) + sum(t) + smooth is 0; use smooth > 0 for empty masks");
  loss[0] = static_cast<float>(-(2.0 * intersection + double(smooth)) / denominator);
}

void CpuBackend::soft_dice_backward(const float* p, const float* t, int64_t n, float smooth,
                                    const float* stats, const float* dloss, float* dp) {
  ICH_PROFILE_SCOPE("soft_dice_backward");
  checks::soft_dice_backward(p, t, n, stats, dloss, dp);
  const double denominator = double(stats[1]) + double(smooth);
  ICH_CHECK(denominator != 0.0,
            "soft_dice_backward: sum(p) + sum(t) + smooth is 0; use smooth > 0 for empty masks");
  const double numerator = 2.0 * double(stats[0]) + double(smooth);
  const double g = dloss[0];
  const double from_union = g * numerator / (denominator * denominator);
  const double per_target = -2.0 * g / denominator;
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<float>(per_target * t[i] + from_union);
}

void CpuBackend::bce_forward(const float* p, const float* t, int64_t n, float* loss) {
  ICH_PROFILE_SCOPE("bce_forward");
  checks::bce_forward(p, t, n, loss);
  const int64_t chunk = cpu::sum_chunk_size(n);
  const int chunks = static_cast<int>(ceil_div(n, chunk));
  double partial[cpu::kMaxSumChunks];
  int64_t out_of_range = 0;
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold) reduction(+ : out_of_range)
  for (int ci = 0; ci < chunks; ++ci) {
    const int64_t begin = int64_t(ci) * chunk;
    const int64_t end = std::min(begin + chunk, n);
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      const float pi = p[i], ti = t[i];
      if (!(pi >= 0.0f && pi <= 1.0f)) ++out_of_range;  // NaN counts too
      const float log_p = std::max(std::log(pi), -100.0f);
      const float log_1mp = std::max(std::log1p(-pi), -100.0f);
      s += double((ti - 1.0f) * log_1mp - ti * log_p);
    }
    partial[ci] = s;
  }
  ICH_CHECK(out_of_range == 0, "bce_forward: " << out_of_range << " of " << n
                                               << " probabilities lie outside [0, 1] (or are "
                                                  "NaN); apply a sigmoid first");
  double total = 0.0;
  for (int ci = 0; ci < chunks; ++ci) total += partial[ci];
  loss[0] = static_cast<float>(total / double(n));
}

void CpuBackend::bce_backward(const float* p, const float* t, int64_t n, const float* dloss,
                              float* dp) {
  ICH_PROFILE_SCOPE("bce_backward");
  checks::bce_backward(p, t, n, dloss, dp);
  const float g = dloss[0];
  const float count = static_cast<float>(n);
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    dp[i] = g * (p[i] - t[i]) / std::max((1.0f - p[i]) * p[i], 1e-12f) / count;
  }
}

}  // namespace ich
