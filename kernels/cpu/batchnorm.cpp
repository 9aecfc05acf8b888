// Batch norm over (n, hw) per channel, as PyTorch's BatchNorm2d.
//   x, y, dx (n, c, hw); gamma, beta, running stats, save_mean, save_invstd, dgamma, dbeta (c)
// Train: mean and biased variance of the batch normalise x; save_invstd = 1 / sqrt(var + eps);
// running_var is updated with the unbiased variance var * m / (m - 1), m = n * hw.
// Backward, with xhat = (x - mean) * invstd:
//   dbeta = sum dy, dgamma = sum dy * xhat, dx = gamma * invstd / m * (m dy - dbeta - xhat dgamma).
//
// Statistics in one pass: shifted sums s1 = sum (x - K), s2 = sum (x - K)^2 in double, K the
// channel's first value, so mean = K + s1 / m and var = (s2 - s1^2 / m) / m. The shift keeps
// E[x^2] - E[x]^2 from cancelling when |mean| >> std (K is a sample of the data, so
// |K - mean| is a few std at most), and double keeps the sums exact enough for any plane.
// The per-element work is float (x - K, x - mean) with double accumulation; the inner loops
// are `omp simd` reductions, whose lane order is fixed by the binary. Every channel is one
// iteration of the parallel loop and sums serially, so results do not depend on the number
// of threads. The backward's two sums share one pass and dx is one more.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

// s1 += sum (x - shift), s2 += sum (x - shift)^2 over one plane (hw).
void shifted_sums(const float* x, int64_t hw, float shift, double& s1, double& s2) {
  double a1 = 0.0, a2 = 0.0;
#pragma omp simd reduction(+ : a1, a2)
  for (int64_t i = 0; i < hw; ++i) {
    const double d = x[i] - shift;
    a1 += d;
    a2 += d * d;
  }
  s1 += a1;
  s2 += a2;
}

}  // namespace

void CpuBackend::batch_norm2d_forward_train(const float* x, float* y, const float* gamma,
                                            const float* beta, float* running_mean,
                                            float* running_var, float* save_mean,
                                            float* save_invstd, int n, int c, int64_t hw,
                                            float momentum, float eps) {
  ICH_PROFILE_SCOPE("batch_norm2d_forward_train");
  checks::batch_norm2d_forward_train(x, y, gamma, beta, running_mean, running_var, save_mean,
                                     save_invstd, n, c, hw, momentum, eps);
  const int64_t m = int64_t(n) * hw;
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int ch = 0; ch < c; ++ch) {
    const float shift = x[int64_t(ch) * hw];
    double s1 = 0.0, s2 = 0.0;
    for (int img = 0; img < n; ++img)
      shifted_sums(x + (int64_t(img) * c + ch) * hw, hw, shift, s1, s2);
    const double mean_minus_shift = s1 / double(m);
    const double squares = std::max(s2 - s1 * mean_minus_shift, 0.0);  // sum (x - mean)^2
    const double var = squares / double(m);
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    const float mean_f = static_cast<float>(double(shift) + mean_minus_shift);
    const float invstd_f = static_cast<float>(invstd);
    save_mean[ch] = mean_f;
    save_invstd[ch] = invstd_f;
    const float unbiased_var = static_cast<float>(squares / double(m - 1));
    running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mean_f;
    running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * unbiased_var;
    const float scale = invstd_f * gamma[ch], b = beta[ch];
    for (int img = 0; img < n; ++img) {
      const int64_t base = (int64_t(img) * c + ch) * hw;
      const float* in = x + base;  // (hw)
      float* out = y + base;       // (hw)
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) out[i] = (in[i] - mean_f) * scale + b;
    }
  }
}

void CpuBackend::batch_norm2d_forward_eval(const float* x, float* y, const float* gamma,
                                           const float* beta, const float* running_mean,
                                           const float* running_var, int n, int c, int64_t hw,
                                           float eps) {
  ICH_PROFILE_SCOPE("batch_norm2d_forward_eval");
  checks::batch_norm2d_forward_eval(x, y, gamma, beta, running_mean, running_var, n, c, hw, eps);
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int64_t nc = 0; nc < int64_t(n) * c; ++nc) {
    const int ch = static_cast<int>(nc % c);
    const float scale = gamma[ch] / std::sqrt(running_var[ch] + eps);
    const float mean = running_mean[ch], b = beta[ch];
    const float* in = x + nc * hw;  // (hw)
    float* out = y + nc * hw;       // (hw)
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) out[i] = (in[i] - mean) * scale + b;
  }
}

void CpuBackend::batch_norm2d_backward(const float* dy, const float* x, const float* gamma,
                                       const float* save_mean, const float* save_invstd, float* dx,
                                       float* dgamma, float* dbeta, int n, int c, int64_t hw) {
  ICH_PROFILE_SCOPE("batch_norm2d_backward");
  checks::batch_norm2d_backward(dy, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta, n, c, hw);
  const int64_t m = int64_t(n) * hw;
#pragma omp parallel for schedule(static) if (int64_t(n) * c * hw > cpu::kParallelThreshold)
  for (int ch = 0; ch < c; ++ch) {
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    double sum_dy = 0.0, sum_dy_xc = 0.0;  // sum dy, sum dy * (x - mean)
    for (int img = 0; img < n; ++img) {
      const int64_t base = (int64_t(img) * c + ch) * hw;
      const float* g = dy + base;  // (hw)
      const float* in = x + base;  // (hw)
      double a0 = 0.0, a1 = 0.0;
#pragma omp simd reduction(+ : a0, a1)
      for (int64_t i = 0; i < hw; ++i) {
        a0 += g[i];
        a1 += double(g[i]) * double(in[i] - mean);
      }
      sum_dy += a0;
      sum_dy_xc += a1;
    }
    const double sum_dy_xhat = sum_dy_xc * double(invstd);
    dbeta[ch] = static_cast<float>(sum_dy);
    dgamma[ch] = static_cast<float>(sum_dy_xhat);
    // dx = gamma invstd (dy - mean(dy) - (x - mean) invstd^2 mean(dy (x - mean)))
    const float k = gamma[ch] * invstd;
    const float mean_dy = static_cast<float>(sum_dy / double(m));
    const float slope = static_cast<float>(sum_dy_xhat * double(invstd) / double(m));
    for (int img = 0; img < n; ++img) {
      const int64_t base = (int64_t(img) * c + ch) * hw;
      const float* g = dy + base;  // (hw)
      const float* in = x + base;  // (hw)
      float* out = dx + base;      // (hw)
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) out[i] = k * (g[i] - mean_dy - (in[i] - mean) * slope);
    }
  }
}

}  // namespace ich
