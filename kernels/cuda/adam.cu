// One fused Adam step, as torch.optim.Adam (and AdamW with decoupled weight decay), in one
// pass over param, grad, m and v (n floats each):
//   decoupled:  param *= 1 - lr * wd;   otherwise:  g = grad + wd * param
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The bias corrections are computed once on the host in double (Python floats in PyTorch).
#include <cmath>

#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

// ---- kernels

__global__ void adam_step_kernel(float* param, const float* grad, float* m, float* v, int64_t n,
                                 float beta1, float beta2, float eps, float step_size,
                                 float bias_correction2_sqrt, float coupled_decay,
                                 float decay_factor) {
  ICH_GRID_STRIDE_LOOP(i, n) {
    float p = param[i];
    const float g = grad[i] + coupled_decay * p;
    p *= decay_factor;
    const float m_i = beta1 * m[i] + (1.0f - beta1) * g;
    const float v_i = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = m_i;
    v[i] = v_i;
    param[i] = p - step_size * m_i / (sqrtf(v_i) / bias_correction2_sqrt + eps);
  }
}

// ---- CudaBackend members

void CudaBackend::adam_step(float* param, const float* grad, float* m, float* v, int64_t n,
                            const AdamParams& p) {
  checks::adam_step(param, grad, m, v, n, p);
  if (n == 0) return;
  const double step = static_cast<double>(p.step);
  const float step_size =
      static_cast<float>(double(p.lr) / (1.0 - std::pow(double(p.beta1), step)));
  const float bias_correction2_sqrt =
      static_cast<float>(std::sqrt(1.0 - std::pow(double(p.beta2), step)));
  // Exactly one of the two decays applies; the other is the identity (0 added, 1 multiplied).
  const float coupled_decay = p.decoupled_weight_decay ? 0.0f : p.weight_decay;
  const float decay_factor = p.decoupled_weight_decay ? 1.0f - p.lr * p.weight_decay : 1.0f;
  launch_linear(adam_step_kernel, n, launch_, param, grad, m, v, n, p.beta1, p.beta2, p.eps,
                step_size, bias_correction2_sqrt, coupled_decay, decay_factor);
}

}  // namespace ich::ICH_CUDA_NS
