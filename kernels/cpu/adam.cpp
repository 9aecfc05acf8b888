// One Adam step as torch.optim.Adam (single-tensor path), elementwise over n parameters:
//   decoupled (AdamW):  param *= 1 - lr * wd;   otherwise:  g = grad + wd * param
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The bias corrections are computed in double (they are Python floats in PyTorch).
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

void CpuBackend::adam_step(float* param, const float* grad, float* m, float* v, int64_t n,
                           const AdamParams& p) {
  ICH_PROFILE_SCOPE("adam_step");
  checks::adam_step(param, grad, m, v, n, p);
  if (n == 0) return;
  const double step = static_cast<double>(p.step);
  const float step_size =
      static_cast<float>(double(p.lr) / (1.0 - std::pow(double(p.beta1), step)));
  const float bias_correction2_sqrt =
      static_cast<float>(std::sqrt(1.0 - std::pow(double(p.beta2), step)));
  const float decay_factor = 1.0f - p.lr * p.weight_decay;
  const bool coupled_decay = !p.decoupled_weight_decay && p.weight_decay != 0.0f;
  const bool decoupled_decay = p.decoupled_weight_decay && p.weight_decay != 0.0f;
#pragma omp parallel for schedule(static) if (n > cpu::kParallelThreshold / 4)
  for (int64_t i = 0; i < n; ++i) {
    float g = grad[i];
    if (coupled_decay) g += p.weight_decay * param[i];
    if (decoupled_decay) param[i] *= decay_factor;
    m[i] = p.beta1 * m[i] + (1.0f - p.beta1) * g;
    v[i] = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
    const float denom = std::sqrt(v[i]) / bias_correction2_sqrt + p.eps;
    param[i] -= step_size * m[i] / denom;
  }
}

}  // namespace ich
