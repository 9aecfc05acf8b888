// Finite-difference gradient checks of engine ops through autograd (gradcheck.h applied to
// y = f(inputs)): what the op table's gradient checks (tests/ops) and tests/engine run.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "common/gradcheck.h"
#include "core/error.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/tensor.h"

namespace ich::test {

struct OpInput {
  Shape shape;
  std::vector<float> values;
  bool differentiable = true;  // checked (and given requires_grad)
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// A differentiable input of `shape`, uniform in [lo, hi) from `seed`.
inline OpInput input(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return {shape, random_values(static_cast<size_t>(shape_numel(shape)), seed, lo, hi), true};
}

// An input that is not differentiated (a target, running statistics).
inline OpInput constant(const Shape& shape, std::vector<float> values) {
  return {shape, std::move(values), false};
}

inline GradCheckOptions step_and_threshold(double step, double threshold) {
  GradCheckOptions o;
  o.step = step;
  o.threshold = threshold;
  return o;
}

// Checks every differentiable input of y = f(inputs) through L = <r, y>, r = upstream_scale *
// U(-1, 1) from `seed`, or r = `upstream` when that is given (one value per element of y):
// the analytic gradient is what autograd accumulates into the input's .grad, the numeric one
// central differences of L run under NoGradGuard. is_kink(input, i) skips coordinate i of
// input `input`.
inline std::vector<GradCheckResult> gradcheck_op(
    const OpFn& f, const std::vector<OpInput>& inputs, uint64_t seed = 99,
    GradCheckOptions options = {}, float upstream_scale = 1.0f,
    const std::function<bool(size_t, size_t)>& is_kink = nullptr,
    const std::vector<float>& upstream = {}) {
  const auto make_inputs = [&](size_t replaced, const std::vector<double>* values) {
    std::vector<Tensor> tensors;
    for (size_t k = 0; k < inputs.size(); ++k) {
      std::vector<float> v = inputs[k].values;
      if (values && k == replaced) {
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((*values)[i]);
      }
      tensors.push_back(Tensor::from_host(v, inputs[k].shape));
    }
    return tensors;
  };

  std::vector<Tensor> tensors = make_inputs(0, nullptr);
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (inputs[k].differentiable) tensors[k].set_requires_grad(true);
  }
  const Tensor y = f(tensors);
  std::vector<float> r = upstream;
  if (r.empty()) {
    r = random_values(static_cast<size_t>(y.numel()), seed);
    for (float& v : r) v *= upstream_scale;
  }
  ICH_CHECK(int64_t(r.size()) == y.numel(),
            "gradcheck_op: " << r.size() << " upstream values for an output of " << y.numel());
  y.backward(Tensor::from_host(r, y.shape()));

  std::vector<GradCheckResult> results;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].differentiable) continue;
    const std::vector<float> g = tensors[k].grad().to_host();
    const std::vector<double> analytic(g.begin(), g.end());
    const auto loss = [&](const std::vector<double>& x) {
      NoGradGuard no_grad;
      const std::vector<float> out = f(make_inputs(k, &x)).to_host();
      double s = 0.0;
      for (size_t i = 0; i < out.size(); ++i) s += double(r[i]) * double(out[i]);
      return s;
    };
    GradCheckOptions opt = options;
    if (is_kink) opt.is_kink = [&, k](size_t i) { return is_kink(k, i); };
    results.push_back(
        check_gradient(loss, std::vector<double>(inputs[k].values.begin(), inputs[k].values.end()),
                       analytic, opt));
  }
  return results;
}

}  // namespace ich::test
