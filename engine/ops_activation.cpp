// relu, sigmoid, dropout2d.
#include "engine/ops.h"
#include "engine/ops_common.h"

namespace ich {

Tensor relu(const Tensor& x) {
  detail::check_input("relu", "input", x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  x.backend().relu_forward(x.data<float>(), y.data<float>(), x.numel());
  record(y, "relu", {x},
         [x = x.detach()](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dx = Tensor::empty(x.shape(), dy.device());
           dy.backend().relu_backward(dy.data<float>(), x.data<float>(), dx.data<float>(),
                                      dy.numel());
           return {dx};
         });
  return y;
}

Tensor relu(Tensor&& x) {
  if (!x.defined() || !x.exclusively_owned()) return relu(static_cast<const Tensor&>(x));
  detail::check_input("relu", "input", x);
  // A new tensor on x's storage: x keeps its own grad_fn for the graph, but its values are
  // never read again (nobody else holds it; the rule below reads only y).
  Tensor y = make_tensor(x.impl()->storage, x.shape(), x.dtype());
  x.backend().relu_forward(x.data<float>(), y.data<float>(), x.numel());
  if (!any_requires_grad({x})) return y;
  record(y, "relu", {std::move(x)},
         [y_saved = y.detach()](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dx = Tensor::empty(y_saved.shape(), dy.device());
           dy.backend().relu_backward(dy.data<float>(), y_saved.data<float>(), dx.data<float>(),
                                      dy.numel());
           return {dx};
         });
  return y;
}

Tensor sigmoid(const Tensor& x) {
  detail::check_input("sigmoid", "input", x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  x.backend().sigmoid_forward(x.data<float>(), y.data<float>(), x.numel());
  record(y, "sigmoid", {x},
         [y = y.detach()](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dx = Tensor::empty(y.shape(), dy.device());
           dy.backend().sigmoid_backward(dy.data<float>(), y.data<float>(), dx.data<float>(),
                                         dy.numel());
           return {dx};
         });
  return y;
}

namespace {

// dropout2d into y (x's own storage when in_place), recording its backward.
Tensor dropout2d_into(const Tensor& x, float p, Generator& gen, bool in_place) {
  const int n = detail::to_int(x.dim(0), "dropout2d batch");
  const int c = detail::to_int(x.dim(1), "dropout2d channels");
  const int64_t hw = x.dim(2) * x.dim(3);
  Tensor y = in_place ? make_tensor(x.impl()->storage, x.shape(), x.dtype())
                      : Tensor::empty(x.shape(), x.device());
  Tensor mask = Tensor::empty({n, c}, x.device());
  const uint64_t offset = gen.reserve(uint64_t(n) * uint64_t(c));
  x.backend().dropout2d_forward(x.data<float>(), y.data<float>(), mask.data<float>(), n, c, hw, p,
                                gen.seed, offset);
  record(y, "dropout2d", {x},
         [mask, n, c, hw](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dx = Tensor::empty(dy.shape(), dy.device());
           dy.backend().dropout2d_backward(dy.data<float>(), mask.data<float>(), dx.data<float>(),
                                           n, c, hw);
           return {dx};
         });
  return y;
}

void check_dropout2d(const Tensor& x, float p) {
  detail::check_input("dropout2d", "input", x, 4);
  ICH_CHECK(p >= 0.0f && p < 1.0f, "dropout2d: p = " << p << " must be in [0, 1)");
}

}  // namespace

Tensor dropout2d(const Tensor& x, float p, bool training, Generator& gen) {
  check_dropout2d(x, p);
  if (!training || p == 0.0f) return x;
  return dropout2d_into(x, p, gen, false);
}

Tensor dropout2d(Tensor&& x, float p, bool training, Generator& gen) {
  check_dropout2d(x, p);
  if (!training || p == 0.0f) return std::move(x);
  // x's values are never read again when nothing else holds it (the rule reads only the
  // mask); x itself stays in the graph for its grad_fn.
  return dropout2d_into(x, p, gen, x.exclusively_owned());
}

}  // namespace ich
