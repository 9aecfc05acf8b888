// add, mul, scale, sum, mean, concat_channels, reshape.
#include "engine/ops.h"
#include "engine/ops_common.h"

namespace ich {

namespace {

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  detail::check_input(op, "first input", a);
  detail::check_input(op, "second input", b);
  check_same_device(op, a, b);
  check_same_shape(op, a, b);
}

// A tensor of `shape` whose every element is alpha * g[0], with g a one-element tensor in
// device memory: C (numel, 1) = alpha * ones (numel, 1) * g (1, 1), so the upstream
// gradient of a reduction never has to visit the host.
Tensor broadcast_scalar(const Tensor& g, const Shape& shape, float alpha) {
  const Tensor ones = Tensor::ones(shape, g.device());
  Tensor out = Tensor::empty(shape, g.device());
  const int rows = detail::to_int(out.numel(), "broadcast size");
  g.backend().gemm(false, false, rows, 1, 1, alpha, ones.data<float>(), 1, g.data<float>(), 1, 0.0f,
                   out.data<float>(), 1);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_pair("add", a, b);
  Tensor y = Tensor::empty(a.shape(), a.device());
  a.backend().add(a.data<float>(), b.data<float>(), y.data<float>(), a.numel());
  record(y, "add", {a, b}, [](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
    return {dy, dy};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_pair("mul", a, b);
  Tensor y = Tensor::empty(a.shape(), a.device());
  a.backend().mul(a.data<float>(), b.data<float>(), y.data<float>(), a.numel());
  record(y, "mul", {a, b},
         [a = a.detach(), b = b.detach()](const Tensor& dy,
                                          const std::vector<bool>& needs) -> std::vector<Tensor> {
           Tensor da, db;
           if (needs[0]) {
             da = Tensor::empty(a.shape(), dy.device());
             dy.backend().mul(dy.data<float>(), b.data<float>(), da.data<float>(), dy.numel());
           }
           if (needs[1]) {
             db = Tensor::empty(b.shape(), dy.device());
             dy.backend().mul(dy.data<float>(), a.data<float>(), db.data<float>(), dy.numel());
           }
           return {da, db};
         });
  return y;
}

Tensor scale(const Tensor& x, float alpha) {
  detail::check_input("scale", "input", x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  x.backend().scale(x.data<float>(), y.data<float>(), x.numel(), alpha);
  record(y, "scale", {x},
         [alpha](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dx = Tensor::empty(dy.shape(), dy.device());
           dy.backend().scale(dy.data<float>(), dx.data<float>(), dy.numel(), alpha);
           return {dx};
         });
  return y;
}

Tensor sum(const Tensor& x) {
  detail::check_input("sum", "input", x);
  Tensor y = Tensor::empty({1}, x.device());
  x.backend().sum(x.data<float>(), x.numel(), y.data<float>());
  record(y, "sum", {x},
         [shape = x.shape()](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           return {broadcast_scalar(dy, shape, 1.0f)};
         });
  return y;
}

Tensor mean(const Tensor& x) {
  detail::check_input("mean", "input", x);
  const float inv_n = 1.0f / static_cast<float>(x.numel());
  Tensor total = Tensor::empty({1}, x.device());
  x.backend().sum(x.data<float>(), x.numel(), total.data<float>());
  Tensor y = Tensor::empty({1}, x.device());
  x.backend().scale(total.data<float>(), y.data<float>(), 1, inv_n);
  record(y, "mean", {x},
         [shape = x.shape(), inv_n](const Tensor& dy, const std::vector<bool>&)
             -> std::vector<Tensor> { return {broadcast_scalar(dy, shape, inv_n)}; });
  return y;
}

Tensor concat_channels(const Tensor& a, const Tensor& b) {
  detail::check_input("concat_channels", "first input", a, 4);
  detail::check_input("concat_channels", "second input", b, 4);
  check_same_device("concat_channels", a, b);
  ICH_CHECK(a.dim(0) == b.dim(0) && a.dim(2) == b.dim(2) && a.dim(3) == b.dim(3),
            "concat_channels: " << a.shape_str() << " and " << b.shape_str()
                                << " differ outside the channel dimension (N, H, W must match)");
  const int n = detail::to_int(a.dim(0), "concat batch");
  const int ca = detail::to_int(a.dim(1), "concat channels");
  const int cb = detail::to_int(b.dim(1), "concat channels");
  const int64_t hw = a.dim(2) * a.dim(3);
  Tensor y = Tensor::empty({n, ca + cb, a.dim(2), a.dim(3)}, a.device());
  a.backend().concat_channels(a.data<float>(), b.data<float>(), y.data<float>(), n, ca, cb, hw);
  record(y, "concat_channels", {a, b},
         [a_shape = a.shape(), b_shape = b.shape(), n, ca, cb, hw](
             const Tensor& dy, const std::vector<bool>& needs) -> std::vector<Tensor> {
           Tensor da, db;
           if (needs[0]) da = Tensor::empty(a_shape, dy.device());
           if (needs[1]) db = Tensor::empty(b_shape, dy.device());
           dy.backend().split_channels(dy.data<float>(), da.defined() ? da.data<float>() : nullptr,
                                       db.defined() ? db.data<float>() : nullptr, n, ca, cb, hw);
           return {da, db};
         });
  return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  ICH_CHECK(x.defined(), "reshape: undefined input");
  check_shape(shape, "reshape");
  ICH_CHECK(shape_numel(shape) == x.numel(), "reshape: cannot view "
                                                 << x.describe() << " as " << shape_str(shape)
                                                 << " (" << shape_numel(shape) << " elements)");
  Tensor y = make_tensor(x.impl()->storage, shape, x.dtype());
  record(y, "reshape", {x},
         [in_shape = x.shape()](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           return {make_tensor(dy.impl()->storage, in_shape, dy.dtype())};
         });
  return y;
}

}  // namespace ich
