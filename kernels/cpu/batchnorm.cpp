// Batch norm over (n, hw) per channel, as PyTorch's BatchNorm2d.
//   x, y, dx (n, c, hw); gamma, beta, running stats, save_mean, save_invstd, dgamma, dbeta (c)
// Train: mean and biased variance of the batch (two passes, in double) normalise x;
// save_invstd = 1 / sqrt(var + eps); running_var is updated with the unbiased variance
// var * m / (m - 1), m = n * hw. Backward, with xhat = (x - mean) * invstd:
//   dbeta = sum dy, dgamma = sum dy * xhat, dx = gamma * invstd / m * (m dy - dbeta - xhat dgamma).
// Every channel is one iteration of the parallel loop and sums serially, so the results do
// not depend on the number of threads.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

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
    double total = 0.0;
    for (int img = 0; img < n; ++img)
      total += cpu::sum_double(x + (int64_t(img) * c + ch) * hw, hw);
    const double mean = total / double(m);
    double squares = 0.0;
    for (int img = 0; img < n; ++img) {
      const float* plane = x + (int64_t(img) * c + ch) * hw;  // (hw)
      for (int64_t i = 0; i < hw; ++i) {
        const double d = plane[i] - mean;
        squares += d * d;
      }
    }
    const double var = squares / double(m);
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    const float mean_f = static_cast<float>(mean);
    const float invstd_f = static_cast<float>(invstd);
    save_mean[ch] = mean_f;
    save_invstd[ch] = invstd_f;
    const float unbiased_var = static_cast<float>(squares / double(m - 1));
    running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mean_f;
    running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * unbiased_var;
    const float g = gamma[ch], b = beta[ch];
    for (int img = 0; img < n; ++img) {
      const int64_t base = (int64_t(img) * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) y[base + i] = (x[base + i] - mean_f) * invstd_f * g + b;
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
    const float invstd = 1.0f / std::sqrt(running_var[ch] + eps);
    const float mean = running_mean[ch], g = gamma[ch], b = beta[ch];
    const float* in = x + nc * hw;  // (hw)
    float* out = y + nc * hw;       // (hw)
    for (int64_t i = 0; i < hw; ++i) out[i] = (in[i] - mean) * invstd * g + b;
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
    const double mean = save_mean[ch], invstd = save_invstd[ch];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int img = 0; img < n; ++img) {
      const int64_t base = (int64_t(img) * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) {
        sum_dy += dy[base + i];
        sum_dy_xhat += double(dy[base + i]) * ((x[base + i] - mean) * invstd);
      }
    }
    dbeta[ch] = static_cast<float>(sum_dy);
    dgamma[ch] = static_cast<float>(sum_dy_xhat);
    const double k = double(gamma[ch]) * invstd / double(m);
    for (int img = 0; img < n; ++img) {
      const int64_t base = (int64_t(img) * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) {
        const double xhat = (x[base + i] - mean) * invstd;
        dx[base + i] =
            static_cast<float>(k * (double(m) * dy[base + i] - sum_dy - xhat * sum_dy_xhat));
      }
    }
  }
}

}  // namespace ich
