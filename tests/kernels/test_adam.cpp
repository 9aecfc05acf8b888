// Adam against torch.optim.Adam's single-tensor update written out in double for 3 steps:
//   (Adam)  g = grad + wd * param      (AdamW)  param = param * (1 - lr * wd)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Gradients are small and eps large enough that eps's place in the formula shows.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels_test_util.h"

using namespace ich;
using namespace ich::test;

namespace {

void run_adam_case(float weight_decay, bool decoupled) {
  const int64_t n = 33;
  AdamParams hp;
  hp.lr = 0.01f;
  hp.beta1 = 0.9f;
  hp.beta2 = 0.99f;
  hp.eps = 1e-3f;
  hp.weight_decay = weight_decay;
  hp.decoupled_weight_decay = decoupled;
  std::vector<float> param = random_values(n, 111);
  std::vector<float> m(n, 0.f), v(n, 0.f);
  std::vector<double> ref_param = to_double(param), ref_m(n, 0.0), ref_v(n, 0.0);
  for (int step = 1; step <= 3; ++step) {
    const std::vector<float> grad = random_values(n, 200 + step, -1e-2f, 1e-2f);
    hp.step = step;
    cpu_backend().adam_step(param.data(), grad.data(), m.data(), v.data(), n, hp);
    const double lr = hp.lr, b1 = hp.beta1, b2 = hp.beta2, eps = hp.eps, wd = weight_decay;
    for (int64_t i = 0; i < n; ++i) {
      double g = grad[i];
      if (decoupled) {
        ref_param[i] *= 1.0 - lr * wd;
      } else {
        g += wd * ref_param[i];
      }
      ref_m[i] = b1 * ref_m[i] + (1.0 - b1) * g;
      ref_v[i] = b2 * ref_v[i] + (1.0 - b2) * g * g;
      const double bias_correction1 = 1.0 - std::pow(b1, step);
      const double bias_correction2 = 1.0 - std::pow(b2, step);
      const double denom = std::sqrt(ref_v[i]) / std::sqrt(bias_correction2) + eps;
      ref_param[i] -= lr / bias_correction1 * ref_m[i] / denom;
    }
    INFO("step " << step << " weight_decay " << weight_decay << " decoupled " << decoupled);
    CHECK(max_abs_diff(m, ref_m) < 1e-8);
    CHECK(max_abs_diff(v, ref_v) < 1e-10);
    CHECK(max_abs_diff(param, ref_param) < 2e-6);
  }
}

}  // namespace

TEST_CASE("adam: three steps match torch.optim.Adam without weight decay", "[adam]") {
  run_adam_case(0.f, false);
}

TEST_CASE("adam: three steps match torch.optim.Adam with L2 weight decay", "[adam]") {
  run_adam_case(0.1f, false);
}

TEST_CASE("adam: three steps match torch.optim.AdamW (decoupled weight decay)", "[adam]") {
  run_adam_case(0.1f, true);
}

TEST_CASE("adam: the first step moves each parameter by about lr", "[adam]") {
  // At step 1 with eps -> 0, m_hat / sqrt(v_hat) = sign(g): the update is lr * sign(g).
  AdamParams hp;
  hp.lr = 0.05f;
  hp.eps = 1e-12f;
  std::vector<float> param = {1.f, 1.f}, grad = {3.f, -0.001f}, m(2, 0.f), v(2, 0.f);
  cpu_backend().adam_step(param.data(), grad.data(), m.data(), v.data(), 2, hp);
  CHECK(param[0] == Approx(0.95f).epsilon(1e-5));
  CHECK(param[1] == Approx(1.05f).epsilon(1e-5));
  hp.step = 0;
  CHECK_THROWS_AS(cpu_backend().adam_step(param.data(), grad.data(), m.data(), v.data(), 2, hp),
                  Error);
  hp.step = 1;
  hp.beta1 = 1.f;
  CHECK_THROWS_AS(cpu_backend().adam_step(param.data(), grad.data(), m.data(), v.data(), 2, hp),
                  Error);
}
