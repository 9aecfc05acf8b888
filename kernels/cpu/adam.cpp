// One Adam step as torch.optim.Adam (single-tensor path), elementwise over n parameters:
//   decoupled (AdamW):  param *= 1 - lr * wd;   otherwise:  g = grad + wd * param
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The bias corrections are computed in double (they are Python floats in PyTorch).
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace ich {

namespace {

// The loop of one step; the weight-decay variant is a template argument so that the loop has
// no branches and vectorises.
template <bool kCoupledDecay, bool kDecoupledDecay>
void adam_loop(float* param, const float* grad, float* m, float* v, int64_t n, float beta1,
               float beta2, float eps, float wd, float decay_factor, float step_size,
               float bias_correction2_sqrt) {
#pragma omp parallel for simd schedule(simd : static) if (n > cpu::kParallelThreshold / 4)
  for (int64_t i = 0; i < n; ++i) {
    float g = grad[i];
    if (kCoupledDecay) g += wd * param[i];
    float theta = param[i];
    if (kDecoupledDecay) theta *= decay_factor;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
    param[i] = theta - step_size * mi / denom;
  }
}

}  // namespace

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
  if (coupled_decay) {
    adam_loop<true, false>(param, grad, m, v, n, p.beta1, p.beta2, p.eps, p.weight_decay,
                           decay_factor, step_size, bias_correction2_sqrt);
  } else if (decoupled_decay) {
    adam_loop<false, true>(param, grad, m, v, n, p.beta1, p.beta2, p.eps, p.weight_decay,
                           decay_factor, step_size, bias_correction2_sqrt);
  } else {
    adam_loop<false, false>(param, grad, m, v, n, p.beta1, p.beta2, p.eps, p.weight_decay,
                            decay_factor, step_size, bias_correction2_sqrt);
  }
}

}  // namespace ich
